package io.tidemark.format;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InputStream;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The encoding side of the golden files: what Tidemark writes today for a decoded golden file is
 * the golden file again (as a JSON tree), so a renamed, dropped or newly defaulted field fails here
 * and not only when an old reader meets new output. The encrypted {@code .bin} files carry a random
 * nonce, so they are checked by decoding only ({@link EncryptionFormatsTest}).
 */
class GoldenFilesEncodeTest {

    /** Each JSON golden file and how it is decoded and encoded again. */
    private static final Map<String, UnaryOperator<byte[]>> ROUND_TRIPS = Map.ofEntries(
            Map.entry("manifest-v1.json", b -> ManifestCodec.encode(ManifestCodec.decode("golden", b))),
            Map.entry(
                    "manifest-v1-consistency-reason.json",
                    b -> ManifestCodec.encode(ManifestCodec.decode("golden", b))),
            Map.entry("manifest-v1-full-reason.json", b -> ManifestCodec.encode(ManifestCodec.decode("golden", b))),
            Map.entry(
                    "manifest-v1-full-reason-kind.json", b -> ManifestCodec.encode(ManifestCodec.decode("golden", b))),
            Map.entry(
                    "manifest-v1-definition-libvirt.json",
                    b -> ManifestCodec.encode(ManifestCodec.decode("golden", b))),
            Map.entry("manifest-v1-definition-qmp.json", b -> ManifestCodec.encode(ManifestCodec.decode("golden", b))),
            Map.entry("event-snapshot-job-v1.json", GoldenFilesEncodeTest::event),
            Map.entry("event-snapshot-job-v1-capture-options.json", GoldenFilesEncodeTest::event),
            Map.entry("event-snapshot-job-v1-not-after.json", GoldenFilesEncodeTest::event),
            Map.entry("event-job-failed-v1.json", GoldenFilesEncodeTest::event),
            Map.entry("event-job-failed-v1-reason.json", GoldenFilesEncodeTest::event),
            Map.entry("event-vm-placed-v1.json", GoldenFilesEncodeTest::event),
            Map.entry("event-vm-gone-v1.json", GoldenFilesEncodeTest::event),
            Map.entry("event-snapshot-job-v1-read-iops.json", GoldenFilesEncodeTest::event),
            Map.entry("event-budget-exceeded-v1.json", GoldenFilesEncodeTest::event),
            Map.entry("point-mark-v1.json", b -> PointMarkCodec.encode(PointMarkCodec.decode("golden", b))),
            Map.entry("config-v1.json", b -> RepositoryConfig.parse("config", b).toBytes()),
            Map.entry("config-encrypted-v1.json", b -> RepositoryConfig.parse("config", b)
                    .toBytes()),
            Map.entry("key-v1.json", b -> WrappedKeys.parse("keys/golden", b).toBytes()));

    private static byte[] event(byte[] golden) {
        return EventCodec.encode(EventCodec.decode(golden));
    }

    static Stream<String> jsonGoldenFiles() {
        return ROUND_TRIPS.keySet().stream().sorted();
    }

    @ParameterizedTest
    @MethodSource("jsonGoldenFiles")
    void encodingADecodedGoldenFileGivesTheGoldenFile(String name) throws IOException {
        byte[] golden;
        try (InputStream in = GoldenFilesEncodeTest.class.getResourceAsStream("/golden/" + name)) {
            assertThat(in).as("golden file %s", name).isNotNull();
            golden = in.readAllBytes();
        }
        JsonNode expected = withoutNulls(Json.mapper().readTree(golden));
        JsonNode encoded =
                withoutNulls(Json.mapper().readTree(ROUND_TRIPS.get(name).apply(golden)));
        if (name.equals("event-snapshot-job-v1-capture-options.json")) {
            // KNOWN DRIFT (reported, not fixed here): the mapper writes a Duration as seconds
            // (WRITE_DURATIONS_AS_TIMESTAMPS is on), the golden file has ISO-8601; both decode alike.
            assertThat(expected.path("payload").path("fullEvery").asText()).isEqualTo("PT168H");
            assertThat(encoded.path("payload").path("fullEvery").asDouble()).isEqualTo(604_800.0);
            ((ObjectNode) encoded.path("payload")).put("fullEvery", "PT168H");
        }
        assertThat(encoded).as("%s encoded again", name).isEqualTo(expected);
    }

    /**
     * The tree without its null-valued fields: the encoders write an absent optional as null, the
     * golden files leave it out, and every reader treats the two alike.
     */
    private static JsonNode withoutNulls(JsonNode node) {
        if (node instanceof ObjectNode object) {
            object.properties().removeIf(e -> e.getValue().isNull());
            object.forEach(GoldenFilesEncodeTest::withoutNulls);
        } else if (node instanceof ArrayNode array) {
            array.forEach(GoldenFilesEncodeTest::withoutNulls);
        }
        return node;
    }

    @Test
    void everyJsonGoldenFileIsCheckedOnTheEncodingSide() throws IOException, URISyntaxException {
        Path dir = Path.of(GoldenFilesEncodeTest.class.getResource("/golden").toURI());
        try (Stream<Path> files = Files.list(dir)) {
            assertThat(files.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".json")))
                    .containsExactlyInAnyOrderElementsOf(ROUND_TRIPS.keySet());
        }
    }
}
