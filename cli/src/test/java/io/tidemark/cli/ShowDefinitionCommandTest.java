package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.FullReason;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.repository.VmDefinition;
import io.tidemark.format.Json;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.format.RestorePointIds;
import io.tidemark.repository.Repository;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.testkit.StdStreams;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

class ShowDefinitionCommandTest {

    @TempDir
    Path dir;

    @RegisterExtension
    final StdStreams std = new StdStreams();

    private final Random random = new Random(7);

    static final VmDefinition LIBVIRT = new VmDefinition(
            VmDefinition.VERSION,
            VmDefinition.LIBVIRT,
            "pc-q35-7.2",
            "x86_64",
            2,
            512L << 20,
            Optional.of("qemu64"),
            Optional.of("bios"),
            List.of(new VmDefinition.Disk(
                    "vda", "virtio", Optional.empty(), Optional.of("WEB1-ROOT"), Optional.of("qcow2"))),
            List.of(new VmDefinition.Nic("net0", "52:54:00:aa:bb:01", "virtio", Optional.of("network:prod"))),
            Optional.of("<domain type=\"kvm\"><name>web-1</name></domain>"),
            List.of("./devices/graphics[vnc]/@passwd"));

    @Test
    void showSummarisesTheDefinitionAndPrintsTheDomainXmlOnlyWhenAsked() throws Exception {
        Path repo = Files.createDirectories(dir.resolve("data/repo"));
        Repository primary = Repository.openOrInit(new FileObjectTarget(repo), RepositoryConfig.defaults());
        Manifest with = point(primary, Optional.of(LIBVIRT));
        Manifest without = point(primary, Optional.empty());
        String data = dir.resolve("data").toString();

        assertThat(Main.execute("show", with.id(), "--data", data))
                .as(std.err())
                .isZero();
        String summary = std.out();
        std.reset();
        assertThat(Main.execute("show", with.id(), "--data", data, "--definition"))
                .as(std.err())
                .isZero();
        String full = std.out();
        std.reset();
        assertThat(Main.execute("show", without.id(), "--data", data))
                .as(std.err())
                .isZero();
        String none = std.out();
        std.reset();
        assertThat(Main.execute("show", with.id(), "--data", data, "--json"))
                .as(std.err())
                .isZero();
        JsonNode json = Json.mapper().readTree(std.out());

        assertThat(summary)
                .contains("pc-q35-7.2, 2 vCPU (qemu64), 512 MiB, 1 disk(s), 1 NIC(s), firmware bios, from libvirt")
                .contains("disk vda")
                .contains("serial WEB1-ROOT")
                .contains("52:54:00:aa:bb:01 virtio on network:prod")
                .contains("secrets removed: ./devices/graphics[vnc]/@passwd")
                .doesNotContain("<domain");
        assertThat(full).contains("<domain type=\"kvm\"><name>web-1</name></domain>");
        assertThat(none).contains("none captured").contains("the plan's settings");
        assertThat(json.path("definition").path("machine").asText()).isEqualTo("pc-q35-7.2");
        assertThat(json.path("definition").has("domainXml")).isFalse();
    }

    private Manifest point(Repository repo, Optional<VmDefinition> definition) {
        int chunk = repo.config().chunkSize();
        var index = repo.newIndex(chunk, Optional.empty());
        byte[] data = new byte[chunk];
        random.nextBytes(data);
        index.set(0, repo.putChunk(data, chunk).digest());
        Instant captured = Instant.now().minusSeconds(definition.isPresent() ? 60 : 120);
        String id = RestorePointIds.next(captured, random);
        Manifest m = new Manifest(
                1,
                id,
                "web-1",
                "hv1",
                "job-" + id,
                captured,
                captured.plusSeconds(1),
                ConsistencyAchieved.CRASH,
                Trigger.schedule("web"),
                "web",
                Optional.empty(),
                List.of(new DiskEntry(
                        "vda",
                        chunk,
                        chunk,
                        index.finish().hex(),
                        "tm-" + id,
                        Optional.of(FullReason.of(FullReason.Kind.FIRST_BACKUP, "first")),
                        chunk,
                        chunk)),
                Optional.empty(),
                definition);
        repo.commit(m);
        return m;
    }
}
