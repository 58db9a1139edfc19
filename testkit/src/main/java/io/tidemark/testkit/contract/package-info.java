/**
 * Contract suites: abstract JUnit 5 test classes that every adapter and every fake of a port
 * extends, so all implementations are held to the same behaviour (as restic's backend test suite).
 */
package io.tidemark.testkit.contract;
