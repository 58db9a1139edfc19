/**
 * Tidemark's test kit: fakes of the ports ({@link io.tidemark.testkit.InMemoryObjectTarget}),
 * fixtures that start real parts in-process, and the contract suites every adapter passes.
 */
package io.tidemark.testkit;
