/**
 * The {@code tidemark} command line (picocli): each command parses its options, calls a use case of the engine or recovery modules, and renders text or JSON. Exit codes are mapped in one place, {@link io.tidemark.cli.Main}.
 */
package io.tidemark.cli;
