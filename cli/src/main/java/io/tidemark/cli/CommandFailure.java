package io.tidemark.cli;

/**
 * A command's failure with the exit code it ends with; {@link Main#execute} prints the message
 * ({@code tidemark: MESSAGE} on stderr, and the JSON error with {@code --json}) and exits with it.
 */
final class CommandFailure extends RuntimeException {

    private final int exitCode;
    private final java.util.Optional<com.fasterxml.jackson.databind.JsonNode> detail;

    CommandFailure(int exitCode, String message) {
        this(exitCode, message, java.util.Optional.empty());
    }

    /** With {@code detail}, such as the engine's answer, added to the JSON error as {@code "detail"}. */
    CommandFailure(int exitCode, String message, java.util.Optional<com.fasterxml.jackson.databind.JsonNode> detail) {
        super(message, null, false, false);
        this.exitCode = exitCode;
        this.detail = detail;
    }

    int exitCode() {
        return exitCode;
    }

    java.util.Optional<com.fasterxml.jackson.databind.JsonNode> detail() {
        return detail;
    }
}
