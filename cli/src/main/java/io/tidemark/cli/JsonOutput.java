package io.tidemark.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.format.Json;

/**
 * What {@code --json} prints on stdout: one JSON document per command (JSON lines for a stream),
 * and on failure the error object {@code {"error": MESSAGE, "exitCode": N}}. Those two keys are
 * stable; see docs/cli.md.
 */
final class JsonOutput {

    private JsonOutput() {}

    /** Prints {@code document} on stdout, indented, as the command's one document. */
    static void print(Object document) {
        try {
            System.out.println(Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(document));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot write JSON output", e);
        }
    }

    /** Prints the error object of a failed command on stdout; {@code detail} (such as the engine's answer) if any. */
    static void error(
            String message, int exitCode, java.util.Optional<com.fasterxml.jackson.databind.JsonNode> detail) {
        ObjectNode o = Json.mapper().createObjectNode();
        o.put("error", message == null ? "" : message);
        o.put("exitCode", exitCode);
        detail.ifPresent(d -> o.set("detail", d));
        print(o);
    }
}
