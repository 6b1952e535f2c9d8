// The accelerators `litespark plan` knows: vendor datasheet figures, one row each, with the
// document they come from. BENCH.md: GPUs use a datasheet table with its source named; a CPU's
// peak is always measured (`cpu` here means this machine, src/metrics/peak.ts).
//
// Dense figures: NVIDIA datasheets print tensor-core throughput "with sparsity" (2:4); dense
// is half of it. Memory is the datasheet's capacity in GB (10^9 bytes): conservative, since
// the devices expose a little more (an H100 80GB reports about 79.6 GiB = 85.5e9 bytes).
// Intra-node links, per direction: NVLink 4 (H100, H200) 900 GB/s bidirectional -> 450 GB/s =
// 3600 Gb/s; NVLink 3 (A100) 600 -> 300 GB/s; NVLink 5 (B200) 1.8 TB/s -> 900 GB/s; MI300X
// Infinity Fabric 7 links x 64 GB/s = 448 GB/s (896 GB/s bidirectional peer bandwidth).

export const ACCELERATORS = ['h100', 'h200', 'a100-80g', 'b200', 'mi300x', 'cpu'] as const;
export type AcceleratorName = (typeof ACCELERATORS)[number];
export type GpuName = Exclude<AcceleratorName, 'cpu'>;

export interface Datasheet {
  /** Product name as the vendor writes it. */
  name: string;
  /** Dense bf16 (= fp16) tensor/matrix throughput, TFLOP/s (no sparsity). */
  bf16Tflops: number;
  /** fp32 (non-tensor, vector) throughput, TFLOP/s: what a --dtype fp32 plan divides by (no TF32). */
  fp32Tflops: number;
  /** Memory capacity, GB (10^9 bytes), as printed. */
  memoryGB: number;
  /** Maximum board power (TDP / TBP), W: the default of --device-watts. */
  tdpWatts: number;
  /** Device-to-device bandwidth inside a node per direction, Gb/s (NVLink / Infinity Fabric): the default link of a one-node plan. */
  intraNodeGbps: number;
  /** The document the figures come from. */
  source: string;
}

export const DATASHEETS: Record<GpuName, Datasheet> = {
  // 1,979 TFLOP/s bf16 with sparsity -> 989 dense (the figure the published Litespark runs use).
  h100: {
    name: 'NVIDIA H100 SXM5 80GB', bf16Tflops: 989, fp32Tflops: 67, memoryGB: 80, tdpWatts: 700, intraNodeGbps: 3600,
    source: 'NVIDIA H100 Tensor Core GPU datasheet (H100 SXM column; bf16 1,979 TFLOPS with sparsity)',
  },
  // Same GH100 compute as the H100 SXM; 141 GB HBM3e.
  h200: {
    name: 'NVIDIA H200 SXM 141GB', bf16Tflops: 989, fp32Tflops: 67, memoryGB: 141, tdpWatts: 700, intraNodeGbps: 3600,
    source: 'NVIDIA H200 Tensor Core GPU datasheet (H200 SXM column; bf16 1,979 TFLOPS with sparsity)',
  },
  'a100-80g': {
    name: 'NVIDIA A100 SXM4 80GB', bf16Tflops: 312, fp32Tflops: 19.5, memoryGB: 80, tdpWatts: 400, intraNodeGbps: 2400,
    source: 'NVIDIA A100 Tensor Core GPU datasheet (A100 80GB SXM column; bf16 312 TFLOPS dense, 624 with sparsity)',
  },
  // Per GPU of the 8-GPU board: totals / 8 (bf16 36 PFLOPS with sparsity -> 2.25 dense; fp32 600 TFLOPS; 1.44 TB).
  b200: {
    name: 'NVIDIA B200 (HGX B200, 1000 W)', bf16Tflops: 2250, fp32Tflops: 75, memoryGB: 180, tdpWatts: 1000, intraNodeGbps: 7200,
    source: 'NVIDIA HGX B200 datasheet (8-GPU totals divided by 8; bf16 with sparsity halved)',
  },
  // AMD prints dense and sparse separately: bf16 1,307.4 dense (2,614.9 with sparsity); fp32 vector 163.4.
  mi300x: {
    name: 'AMD Instinct MI300X OAM', bf16Tflops: 1307.4, fp32Tflops: 163.4, memoryGB: 192, tdpWatts: 750, intraNodeGbps: 3584,
    source: 'AMD Instinct MI300X Accelerator data sheet (peak theoretical, dense)',
  },
};

/** What a plan divides by and sizes against: one device of the accelerator. */
export interface Device {
  accelerator: AcceleratorName;
  name: string;
  /** Peak FLOP/s for the plan's dtype. */
  peakFlops: number;
  /** Memory per device, bytes. */
  memoryBytes: number;
  /** Power per device for the energy estimate (W); null when unknown (cpu without --device-watts). */
  watts: number | null;
  /** Where the peak, memory and power figures come from. */
  source: string;
}

export function isAccelerator(name: string): name is AcceleratorName {
  return (ACCELERATORS as readonly string[]).includes(name);
}

/** A GPU of the datasheet table at `dtype`; `watts` overrides the TDP, `memoryBytes` the capacity. */
export function gpuDevice(name: GpuName, dtype: 'bf16' | 'fp32', o: { watts?: number; memoryBytes?: number } = {}): Device {
  const d = DATASHEETS[name];
  return {
    accelerator: name,
    name: d.name,
    peakFlops: (dtype === 'bf16' ? d.bf16Tflops : d.fp32Tflops) * 1e12,
    memoryBytes: o.memoryBytes ?? d.memoryGB * 1e9,
    watts: o.watts ?? d.tdpWatts,
    source: d.source,
  };
}
