package io.tidemark.workers.rbd;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The RBD image behind a QEMU disk and how QEMU reaches its cluster: the {@code conf} file and the
 * client {@code user} of QEMU's {@code rbd} block driver (absent: librbd's defaults, {@code
 * /etc/ceph/ceph.conf} and {@code admin}).
 */
public record RbdDisk(RbdImage image, Optional<Path> conf, Optional<String> user) {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String JSON_PREFIX = "json:";

    /**
     * The RBD image named by a node's {@code query-block} filename, or empty when the node is not on
     * RBD. QEMU 7.2 names an {@code rbd} node {@code json:{"driver":"rbd","pool":…,"image":…}} and a
     * format node over one {@code json:{"driver":"raw","file":{"driver":"rbd",…}}} (both verified with
     * {@code -blockdev driver=rbd} and {@code -drive file=rbd:pool/img,format=raw}).
     */
    public static Optional<RbdDisk> fromQemuFilename(String filename) {
        if (!filename.startsWith(JSON_PREFIX)) {
            return Optional.empty();
        }
        JsonNode n;
        try {
            n = JSON.readTree(filename.substring(JSON_PREFIX.length()));
        } catch (IOException e) {
            return Optional.empty(); // not ours to judge: the disk is then simply not tracked by RBD
        }
        if (!n.path("driver").asText().equals("rbd")) {
            n = n.path("file");
        }
        if (!n.path("driver").asText().equals("rbd") || !n.hasNonNull("pool") || !n.hasNonNull("image")) {
            return Optional.empty();
        }
        Optional<String> namespace =
                Optional.ofNullable(n.get("namespace")).map(JsonNode::asText).filter(s -> !s.isEmpty());
        return Optional.of(new RbdDisk(
                new RbdImage(n.get("pool").asText(), namespace, n.get("image").asText()),
                text(n, "conf").map(Path::of),
                text(n, "user")));
    }

    /** A tracker that reaches the image's cluster as QEMU does. */
    public RbdChangeTracker tracker(Duration timeout) {
        List<String> args = new ArrayList<>();
        conf.ifPresent(c -> args.addAll(List.of("-c", c.toString())));
        user.ifPresent(u -> args.addAll(List.of("--id", u)));
        return new RbdChangeTracker(args, timeout);
    }

    private static Optional<String> text(JsonNode n, String field) {
        return Optional.ofNullable(n.get(field)).map(JsonNode::asText).filter(s -> !s.isEmpty());
    }
}
