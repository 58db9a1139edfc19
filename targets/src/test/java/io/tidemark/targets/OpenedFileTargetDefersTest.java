package io.tidemark.targets;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.core.target.ObjectTarget;
import io.tidemark.targets.file.FileObjectTarget;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A directory target opened through {@link TargetSpec#open} (a {@code targets:} entry or a
 * command-line location: retrying, and rate-limited when a bandwidth limit is set) keeps the
 * batched durability of ADR 21: a deferred object reaches its final name only at the flush,
 * instead of being written durably one by one.
 */
class OpenedFileTargetDefersTest {

    @TempDir
    Path root;

    private void assertDeferredUntilFlush(ObjectTarget opened) {
        byte[] bytes = "one".getBytes(StandardCharsets.UTF_8);
        FileObjectTarget other = new FileObjectTarget(root);
        assertThat(opened.putIfAbsentDeferred("chunks/ab/abc", bytes)).isTrue();
        assertThat(opened.exists("chunks/ab/abc")).isTrue();
        assertThat(other.exists("chunks/ab/abc"))
                .as("not linked before the barrier")
                .isFalse();
        opened.flush();
        assertThat(other.get("chunks/ab/abc"))
                .hasValueSatisfying(b -> assertThat(b).isEqualTo(bytes));
    }

    @Test
    void theRetryingWrapperForwardsDeferredWritesAndTheBarrier() {
        assertDeferredUntilFlush(
                new FileTargetSpec(root, new TransferLimits(Duration.ofSeconds(5), 0)).open("primary"));
    }

    @Test
    void theRateLimitedWrapperForwardsThemToo() {
        assertDeferredUntilFlush(
                new FileTargetSpec(root, new TransferLimits(Duration.ofSeconds(5), 1L << 30)).open("primary"));
    }
}
