/**
 * The few assertions the tests use, on top of `node:assert/strict` (JSR's
 * `@std/assert` is not reachable from the build machines).
 *
 * @module
 */

import assert from "node:assert/strict";

/** Deep strict equality. */
export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  assert.deepStrictEqual(actual, expected, message);
}

/** Truthiness. */
export function assertOk(value: unknown, message?: string): asserts value {
  assert.ok(value, message);
}

/** `fn` throws an instance of `type`; returns the error. */
export function assertThrows<E extends Error>(
  fn: () => unknown,
  type: new (...args: never[]) => E,
): E {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof type, `expected ${type.name}, got ${error}`);
    return error;
  }
  throw new assert.AssertionError({ message: `expected ${type.name} to be thrown` });
}

/** `promise` rejects with an instance of `type`; returns the error. */
export async function assertRejects<E extends Error>(
  promise: Promise<unknown>,
  type: new (...args: never[]) => E,
): Promise<E> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof type, `expected ${type.name}, got ${error}`);
    return error;
  }
  throw new assert.AssertionError({ message: `expected ${type.name} to be thrown` });
}

/** `actual` is at most `limit`. */
export function assertAtMost(actual: number, limit: number, what: string): void {
  assert.ok(actual <= limit, `${what}: ${actual} > ${limit}`);
}
