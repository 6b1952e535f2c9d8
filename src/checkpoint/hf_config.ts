// Hugging Face `config.json` (transformers' LlamaConfig) -> litespark's model config, refusing
// what the model here does not implement rather than loading it wrong.
//
// Accepted: model_type "llama" (or architectures naming LlamaForCausalLM), hidden_act "silu",
// no attention or MLP biases, head_dim = hidden_size / num_attention_heads, rope_scaling null
// (plain RoPE, Hugging Face's rotate_half layout: the q/k weights of a Hugging Face checkpoint
// are used as they are, no permutation). num_key_value_heads defaults to num_attention_heads,
// as in transformers.
import { ConfigError, parseModelConfig, type ModelConfig } from '../config/schema.js';
import { CheckpointError } from './safetensors.js';

type Obj = Record<string, unknown>;

export function fromHfLlamaConfig(raw: unknown, path: string): ModelConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new CheckpointError(`${path}: not a JSON object`);
  const c = raw as Obj;
  const fail = (field: string, why: string): never => {
    throw new CheckpointError(`${path}: ${field}: ${why}`);
  };
  const archs = Array.isArray(c.architectures) ? (c.architectures as unknown[]) : [];
  if (c.model_type !== 'llama' && !archs.includes('LlamaForCausalLM')) {
    fail('model_type', `${JSON.stringify(c.model_type ?? null)} is not a Llama model (model_type "llama", LlamaForCausalLM)`);
  }
  if (c.hidden_act !== undefined && c.hidden_act !== 'silu') fail('hidden_act', `${JSON.stringify(c.hidden_act)}: only "silu" (SwiGLU) is implemented`);
  if (c.attention_bias === true) fail('attention_bias', 'true: attention projections with biases are not implemented');
  if (c.mlp_bias === true) fail('mlp_bias', 'true: MLP projections with biases are not implemented');
  if (c.rope_scaling !== undefined && c.rope_scaling !== null) {
    fail('rope_scaling', `${JSON.stringify(c.rope_scaling)}: scaled RoPE (Llama 3.1 "llama3", linear, dynamic, yarn) is not implemented`);
  }
  const heads = c.num_attention_heads;
  const hidden = c.hidden_size;
  if (c.head_dim !== undefined && c.head_dim !== null && typeof heads === 'number' && typeof hidden === 'number' && c.head_dim !== hidden / heads) {
    fail('head_dim', `${c.head_dim} differs from hidden_size / num_attention_heads = ${hidden / heads}; only that head width is implemented`);
  }
  const model: Obj = {
    vocab_size: c.vocab_size,
    hidden_size: hidden,
    intermediate_size: c.intermediate_size,
    num_hidden_layers: c.num_hidden_layers,
    num_attention_heads: heads,
    num_key_value_heads: c.num_key_value_heads ?? heads,
    max_position_embeddings: c.max_position_embeddings,
    ...(c.rms_norm_eps !== undefined ? { rms_norm_eps: c.rms_norm_eps } : {}),
    ...(c.rope_theta !== undefined ? { rope_theta: c.rope_theta } : {}),
    ...(c.tie_word_embeddings !== undefined ? { tie_word_embeddings: c.tie_word_embeddings } : {}),
    ...(c.initializer_range !== undefined ? { initializer_range: c.initializer_range } : {}),
  };
  try {
    return parseModelConfig(model);
  } catch (e) {
    if (e instanceof ConfigError) throw new CheckpointError(`${path}: ${e.message.replaceAll('config: model.', '')}`);
    throw e;
  }
}
