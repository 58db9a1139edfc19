package io.tidemark.workers.mirror;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * What continuous protection needs from QEMU, checked in the reply of {@code query-qmp-schema}: the
 * {@code blockdev-mirror} command with {@code copy-mode} {@code write-blocking} and {@code
 * on-target-error}, and the {@code nbd} blockdev driver with {@code reconnect-delay}. QEMU 7.2 has
 * all of them (verified); older builds lack {@code copy-mode} (added in 3.0) or {@code
 * reconnect-delay} (4.2).
 */
public final class MirrorFeatures {

    private MirrorFeatures() {}

    /** The missing features, each named as an operator would search for it; empty when all exist. */
    public static List<String> missing(JsonNode schema) {
        Map<String, JsonNode> byName = new HashMap<>();
        for (JsonNode e : schema) {
            byName.put(e.path("name").asText(), e);
        }
        List<String> missing = new ArrayList<>();
        Optional<JsonNode> mirror = Optional.ofNullable(byName.get("blockdev-mirror"));
        if (mirror.isEmpty()) {
            missing.add("QMP command blockdev-mirror");
            return withNbd(byName, missing);
        }
        JsonNode args = byName.getOrDefault(mirror.get().path("arg-type").asText(), ABSENT);
        Optional<JsonNode> copyMode = member(args, "copy-mode");
        if (copyMode.isEmpty()) {
            missing.add("blockdev-mirror argument copy-mode (active mirroring, QEMU >= 3.0)");
        } else {
            JsonNode modes = byName.getOrDefault(copyMode.get().path("type").asText(), ABSENT);
            boolean blocking = false;
            for (JsonNode v : modes.path("values")) {
                blocking |= v.asText().equals("write-blocking");
            }
            if (!blocking) {
                missing.add("blockdev-mirror copy-mode value write-blocking");
            }
        }
        if (member(args, "on-target-error").isEmpty()) {
            missing.add("blockdev-mirror argument on-target-error");
        }
        return withNbd(byName, missing);
    }

    /**
     * What NBD over TLS needs besides {@link #missing}: the {@code nbd} driver's {@code tls-creds}
     * and, when a host name is set, {@code tls-hostname} (QEMU >= 7.0); empty when all exist.
     */
    public static List<String> missingTls(JsonNode schema, boolean hostname) {
        List<String> missing = new ArrayList<>();
        List<JsonNode> nbd = new ArrayList<>();
        for (JsonNode e : schema) {
            if (e.path("meta-type").asText().equals("object")
                    && member(e, "reconnect-delay").isPresent()
                    && member(e, "export").isPresent()
                    && member(e, "server").isPresent()) {
                nbd.add(e);
            }
        }
        if (nbd.stream().noneMatch(e -> member(e, "tls-creds").isPresent())) {
            missing.add("nbd blockdev driver option tls-creds (NBD over TLS)");
        }
        if (hostname && nbd.stream().noneMatch(e -> member(e, "tls-hostname").isPresent())) {
            missing.add("nbd blockdev driver option tls-hostname (QEMU >= 7.0; or leave dr.tls.hostname out)");
        }
        return missing;
    }

    private static List<String> withNbd(Map<String, JsonNode> byName, List<String> missing) {
        boolean reconnect = byName.values().stream()
                .filter(e -> e.path("meta-type").asText().equals("object"))
                .anyMatch(e -> member(e, "reconnect-delay").isPresent()
                        && member(e, "export").isPresent()
                        && member(e, "server").isPresent());
        if (!reconnect) {
            missing.add("nbd blockdev driver option reconnect-delay (QEMU >= 4.2)");
        }
        return missing;
    }

    private static Optional<JsonNode> member(JsonNode object, String name) {
        for (JsonNode m : object.path("members")) {
            if (m.path("name").asText().equals(name)) {
                return Optional.of(m);
            }
        }
        return Optional.empty();
    }

    private static final JsonNode ABSENT = com.fasterxml.jackson.databind.node.MissingNode.getInstance();
}
