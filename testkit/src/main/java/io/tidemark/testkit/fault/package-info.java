/**
 * Fault injection for tests: a reverse proxy on 127.0.0.1 that answers a seeded-random share of
 * requests with errors, stalls or resets, adds latency, and counts what reached the real server.
 */
package io.tidemark.testkit.fault;
