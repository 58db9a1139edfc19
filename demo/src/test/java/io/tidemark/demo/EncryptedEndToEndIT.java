package io.tidemark.demo;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.format.FormatConstants;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The engine with an {@code encryption:} section, on real parts (QEMU under TCG, embedded Kafka,
 * S3Proxy with a file-system store): it creates an encrypted primary repository, captures and
 * replicates; S3 holds encrypted objects only; after the local repository is deleted, the
 * passphrase alone restores every point from S3, bit-identical to the disk at its snapshot moment.
 */
class EncryptedEndToEndIT {

    @TempDir
    Path dir;

    @Test
    void anEncryptedEngineRunRestoresFromS3WithThePassphraseAlone() throws Exception {
        Path demo = dir.resolve("demo");
        DemoScenario.Outcome o = new DemoScenario(demo, System.out, 2)
                .encrypted("end-to-end passphrase, not a real one")
                .run(null);
        assertThat(o.points()).hasSize(2);
        for (DemoScenario.Point p : o.points()) {
            assertThat(o.matches(p))
                    .as(
                            "restore of %s from S3 equals the disk at its snapshot moment",
                            p.manifest().id())
                    .isTrue();
        }
        // what S3Proxy stored on disk: key objects, and chunks and manifests that are all encrypted
        List<Path> stored = files(demo.resolve("s3"));
        assertThat(stored).anyMatch(f -> f.toString().contains("/keys/"));
        List<Path> chunks =
                stored.stream().filter(f -> f.toString().contains("/chunks/")).toList();
        List<Path> manifests = stored.stream()
                .filter(f -> f.toString().contains("/manifests/"))
                .toList();
        assertThat(chunks).isNotEmpty();
        assertThat(manifests).hasSizeGreaterThanOrEqualTo(2);
        for (Path f : Stream.concat(chunks.stream(), manifests.stream()).toList()) {
            byte[] bytes = Files.readAllBytes(f);
            assertThat(bytes[6]).as("flags of %s", f).isEqualTo(FormatConstants.FLAG_ENCRYPTED);
            assertThat(new String(bytes, StandardCharsets.ISO_8859_1))
                    .as(f.toString())
                    .doesNotContain(DemoScenario.VM);
        }
    }

    private static List<Path> files(Path root) throws IOException {
        try (Stream<Path> walk = Files.walk(root)) {
            return walk.filter(Files::isRegularFile).toList();
        }
    }
}
