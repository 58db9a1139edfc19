package io.tidemark.repository;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.RetriableException;
import io.tidemark.core.repository.PointMark;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.ObjectKeys;
import io.tidemark.format.PointMarkCodec;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.testkit.ForwardingObjectTarget;
import io.tidemark.testkit.InMemoryObjectTarget;
import java.time.Instant;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** Replacing a mark (pin, expire) never loses it, whatever fails between its two writes. */
class PointMarkReplacementTest {

    private static final String VM = "shop-1";
    private static final String POINT = "20261206T120000.000Z-abc123";

    private final InMemoryObjectTarget memory = new InMemoryObjectTarget("primary");
    private final FailingAfter target = new FailingAfter(memory);
    private final Repository repo = Repository.openOrInit(target, RepositoryConfig.defaults());

    private static PointMark mark(PointMark.Kind kind, String reason) {
        return new PointMark(kind, reason, Instant.parse("2026-12-06T12:00:00Z"), Map.of());
    }

    @Test
    void aFailureBetweenTheTwoWritesOfAReplacementLeavesTheNewMarkReadable() {
        PointMark expired = mark(PointMark.Kind.EXPIRED, "deploy of shop@1 succeeded");
        PointMark pinned = mark(PointMark.Kind.PINNED, "deploy of shop@1 failed");
        repo.mark(VM, POINT, expired);

        target.failAfterWrites(1); // the replacement's first change lands, the second fails
        assertThatThrownBy(() -> repo.mark(VM, POINT, pinned)).isInstanceOf(RetriableException.class);

        // a fresh reader (another process) sees the new pin, not nothing and not the old mark
        assertThat(Repository.open(memory).marks(VM)).containsEntry(POINT, pinned);
        target.failAfterWrites(Integer.MAX_VALUE);
        // the next replacement cleans up what the failed one left
        repo.mark(VM, POINT, expired);
        assertThat(repo.marks(VM)).containsExactly(Map.entry(POINT, expired));
        assertThat(memory.list(ObjectKeys.markPrefix(VM))).hasSize(1);
    }

    @Test
    void aFailureOfTheFirstWriteKeepsTheOldMark() {
        PointMark pinned = mark(PointMark.Kind.PINNED, "deploy of shop@1 failed");
        repo.mark(VM, POINT, pinned);
        target.failAfterWrites(0);
        assertThatThrownBy(() -> repo.mark(VM, POINT, mark(PointMark.Kind.EXPIRED, "x")))
                .isInstanceOf(RetriableException.class);
        assertThat(Repository.open(memory).marks(VM)).containsEntry(POINT, pinned);
    }

    @Test
    void aMarkWrittenBeforeVersionsIsReadAndReplaced() {
        PointMark old = mark(PointMark.Kind.PINNED, "written by an older Tidemark");
        memory.putIfAbsent(ObjectKeys.mark(VM, POINT), PointMarkCodec.encode(old));
        assertThat(repo.marks(VM)).containsExactly(Map.entry(POINT, old));

        PointMark expired = mark(PointMark.Kind.EXPIRED, "deploy succeeded");
        repo.mark(VM, POINT, expired);
        assertThat(repo.marks(VM)).containsExactly(Map.entry(POINT, expired));
        assertThat(memory.exists(ObjectKeys.mark(VM, POINT))).isFalse();
    }

    @Test
    void markKeysParseBackAndOtherKeysAreIgnored() {
        assertThat(ObjectKeys.parseMark(VM, ObjectKeys.mark(VM, POINT, 42)))
                .contains(new ObjectKeys.MarkKey(POINT, 42));
        assertThat(ObjectKeys.parseMark(VM, ObjectKeys.mark(VM, POINT))).contains(new ObjectKeys.MarkKey(POINT, 0));
        assertThat(ObjectKeys.parseMark(VM, ObjectKeys.markPrefix(VM) + POINT + "/x.json"))
                .isEmpty();
        assertThat(ObjectKeys.parseMark(VM, ObjectKeys.markPrefix(VM) + "notes.txt"))
                .isEmpty();
    }

    /** Passes writes (puts and deletes) through until told how many more may succeed, then fails them. */
    private static final class FailingAfter extends ForwardingObjectTarget {
        private final AtomicInteger allowed = new AtomicInteger(Integer.MAX_VALUE);

        FailingAfter(ObjectTarget inner) {
            super(inner);
        }

        void failAfterWrites(int n) {
            allowed.set(n);
        }

        private void write(String key) {
            if (allowed.getAndDecrement() <= 0) {
                throw new RetriableException("injected failure writing " + key);
            }
        }

        @Override
        public boolean putIfAbsent(String key, byte[] data) {
            write(key);
            return delegate().putIfAbsent(key, data);
        }

        @Override
        public void delete(String key) {
            write(key);
            delegate().delete(key);
        }
    }
}
