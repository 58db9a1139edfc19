package io.tidemark.recovery;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.Sleeper;
import io.tidemark.testkit.FakeClock;
import io.tidemark.testkit.InMemoryColdStorage;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Cold restore against a store that models the archive delay (4 h), on a fake clock. */
class ColdRestoreTest {

    final FakeClock clock = new FakeClock(Instant.parse("2026-01-01T00:00:00Z"));
    final InMemoryColdStorage store = new InMemoryColdStorage(clock, Duration.ofHours(4));
    final Sleeper sleeper = clock::advance;
    final ColdRestore restore = new ColdRestore(store, clock, sleeper, Duration.ofMinutes(15));
    final List<ColdRestore.Progress> progress = new ArrayList<>();

    private List<String> put(int n, String storageClass) {
        List<String> keys = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            String key = "chunks/" + storageClass + "/" + i;
            store.putIfAbsent(key, ("chunk " + i).getBytes(UTF_8));
            if (!storageClass.equals("STANDARD")) {
                store.transition(key, storageClass);
            }
            keys.add(key);
        }
        return keys;
    }

    @Test
    void archivedObjectsAreRequestedOnceAndReadableAfterTheModelledDelay() throws InterruptedException {
        List<String> keys = new ArrayList<>(put(3, "GLACIER"));
        keys.addAll(put(2, "STANDARD"));
        assertThatThrownBy(() -> store.get(keys.get(0)))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("InvalidObjectState");

        ColdRestore.Result r = restore.run(keys, 7, Duration.ofHours(12), progress::add);

        assertThat(r.complete()).isTrue();
        assertThat(r.objects()).isEqualTo(5);
        assertThat(r.archived()).isEqualTo(3);
        assertThat(r.requested()).isEqualTo(3);
        assertThat(store.restoreRequests()).isEqualTo(3);
        assertThat(r.waited()).isEqualTo(Duration.ofHours(4)); // 16 polls of 15 min
        // the failed read above, 5 at first, one per poll while the first is restoring, the 3 completed
        assertThat(store.heads()).isEqualTo(1 + 5 + 15 + 3);
        assertThat(progress.get(0)).isEqualTo(new ColdRestore.Progress(5, 2, 3, 3, Duration.ZERO));
        assertThat(progress.get(progress.size() - 1).readable()).isEqualTo(5);
        for (String key : keys) {
            assertThat(store.get(key)).isPresent();
        }
    }

    @Test
    void aDeadlineBeforeTheDelayReportsWhatIsPendingAndARerunDoesNotAskAgain() throws InterruptedException {
        List<String> keys = put(2, "DEEP_ARCHIVE");

        ColdRestore.Result first = restore.run(keys, 1, Duration.ofHours(1), progress::add);
        assertThat(first.complete()).isFalse();
        assertThat(first.pending()).containsExactlyElementsOf(keys);
        assertThat(first.waited()).isEqualTo(Duration.ofHours(1));

        assertThatThrownBy(() -> restore.runOrFail(keys, 1, Duration.ofMinutes(30), p -> {}))
                .isInstanceOf(RetriableException.class)
                .hasMessageContaining("2 of 2 archived objects are still being restored after 1800 s")
                .hasMessageContaining("run the restore again later");
        assertThat(store.restoreRequests()).isEqualTo(2); // reruns found them restoring: no new request

        ColdRestore.Result third = restore.run(keys, 1, Duration.ofHours(12), p -> {});
        assertThat(third.complete()).isTrue();
        assertThat(third.requested()).isZero();
        assertThat(third.waited()).isEqualTo(Duration.ofHours(2).plusMinutes(30));
    }

    @Test
    void aRestoredCopyThatExpiredIsRequestedAgain() throws InterruptedException {
        List<String> keys = put(1, "GLACIER");
        restore.run(keys, 1, Duration.ofHours(12), p -> {});
        clock.advance(Duration.ofDays(2)); // the 1-day copy expired
        ColdRestore.Result again = restore.run(keys, 1, Duration.ofHours(12), p -> {});
        assertThat(again.requested()).isEqualTo(1);
        assertThat(again.complete()).isTrue();
        assertThat(store.restoreRequests()).isEqualTo(2);
    }
}
