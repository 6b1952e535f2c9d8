/** Bad data input (a missing or unreadable path, a corpus too small): the CLI exits with 2. */
export class DataError extends Error {
  override name = 'DataError';
}
