package io.tidemark.targets.file;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Deferred writes: this client sees the object at once, no final name exists before its bytes are
 * durable (other clients, or this one after a crash, see nothing), and flush publishes everything.
 */
class DeferredDurabilityTest {

    @TempDir
    Path root;

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private long files(String marker) throws IOException {
        try (Stream<Path> walk = Files.walk(root)) {
            return walk.filter(Files::isRegularFile)
                    .filter(p -> p.getFileName().toString().contains(marker))
                    .count();
        }
    }

    @Test
    void aDeferredObjectIsVisibleHereAtOnceAndElsewhereOnlyAfterFlush() throws IOException {
        FileObjectTarget writer = new FileObjectTarget(root);
        FileObjectTarget other = new FileObjectTarget(root);
        assertThat(writer.putIfAbsentDeferred("chunks/ab/abc", bytes("one"))).isTrue();
        assertThat(writer.putIfAbsentDeferred("chunks/ab/abc", bytes("one"))).isFalse();
        assertThat(writer.exists("chunks/ab/abc")).isTrue();
        assertThat(writer.get("chunks/ab/abc"))
                .hasValueSatisfying(b -> assertThat(b).isEqualTo(bytes("one")));

        assertThat(Files.exists(root.resolve("chunks/ab/abc"))).isFalse();
        assertThat(other.exists("chunks/ab/abc")).isFalse();
        assertThat(other.get("chunks/ab/abc")).isEmpty();
        assertThat(other.list("chunks/")).isEmpty();

        writer.flush();
        assertThat(other.get("chunks/ab/abc"))
                .hasValueSatisfying(b -> assertThat(b).isEqualTo(bytes("one")));
        assertThat(other.list("chunks/")).containsExactly("chunks/ab/abc");
        assertThat(files(FileObjectTarget.TEMP_MARKER)).isZero();
        assertThat(writer.putIfAbsentDeferred("chunks/ab/abc", bytes("one"))).isFalse();
        writer.flush(); // nothing pending: a no-op
    }

    @Test
    void aFullBatchFlushesItselfSoPendingObjectsStayBounded() throws IOException {
        FileObjectTarget writer = new FileObjectTarget(root);
        int n = FileObjectTarget.MAX_DEFERRED + 10;
        for (int i = 0; i < n; i++) {
            assertThat(writer.putIfAbsentDeferred("chunks/" + (i % 7) + "/k" + i, bytes("v" + i)))
                    .isTrue();
        }
        assertThat(files(FileObjectTarget.TEMP_MARKER)).isLessThan(FileObjectTarget.MAX_DEFERRED);
        assertThat(new FileObjectTarget(root).list("chunks/"))
                .hasSizeGreaterThanOrEqualTo(FileObjectTarget.MAX_DEFERRED);
        writer.flush();
        assertThat(new FileObjectTarget(root).list("chunks/")).hasSize(n);
        assertThat(files(FileObjectTarget.TEMP_MARKER)).isZero();
    }

    /**
     * While one put flushes a full batch (here held up by fsyncs that do not return), another
     * writer's put goes on instead of waiting behind that barrier; the object it wrote is published
     * by the next flush.
     */
    @Test
    void aPutDoesNotWaitForAFlushThatAnotherPutRuns() throws Exception {
        CountDownLatch fsyncs = new CountDownLatch(1);
        FileSync held = new FileSync() {
            @Override
            public void file(Path file) throws IOException {
                try {
                    fsyncs.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IOException("interrupted", e);
                }
                FileSync.SYSTEM.file(file);
            }

            @Override
            public void directory(Path dir) throws IOException {
                FileSync.SYSTEM.directory(dir);
            }
        };
        FileObjectTarget target = new FileObjectTarget(root, held);
        Thread filler = new Thread(() -> {
            for (int i = 0; i < FileObjectTarget.MAX_DEFERRED; i++) {
                target.putIfAbsentDeferred("chunks/" + (i % 7) + "/k" + i, bytes("v" + i));
            }
        });
        filler.start();
        // the last of its puts found the batch full and waits in the flush for the held fsyncs
        await().atMost(Duration.ofSeconds(60)).until(() -> filler.getState() == Thread.State.WAITING);

        CompletableFuture<Boolean> other =
                CompletableFuture.supplyAsync(() -> target.putIfAbsentDeferred("chunks/x/other", bytes("other")));
        try {
            assertThat(other.get(20, TimeUnit.SECONDS)).isTrue();
            assertThat(filler.isAlive()).isTrue(); // the flush is still held
        } finally {
            fsyncs.countDown();
        }
        filler.join(60_000);
        assertThat(filler.isAlive()).isFalse();
        target.flush();
        assertThat(new FileObjectTarget(root).list("chunks/")).hasSize(FileObjectTarget.MAX_DEFERRED + 1);
        assertThat(files(FileObjectTarget.TEMP_MARKER)).isZero();
    }
}
