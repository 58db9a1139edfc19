package io.tidemark.testkit.contract;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.core.target.ObjectTarget;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The behaviour every {@link ObjectTarget} adapter and fake must show. A subclass supplies {@link
 * #newTarget()}; each test gets a fresh target, which the suite closes afterwards.
 *
 * <p>Subclasses may override {@link #secrets()} (strings {@link ObjectTarget#describe()} must never
 * contain) and {@link #putIfAbsentIsExclusive()} for adapters whose back end has no conditional
 * write; such adapters are still held to the weaker guarantee that concurrent writers leave one
 * complete object.
 */
public abstract class ObjectTargetContract {

    private static final int FIVE_MIB = 5 * 1024 * 1024;

    /** The target under test; opened before and closed after each test. */
    protected ObjectTarget target;

    /** A target on a fresh, empty key space. Called once per test. */
    protected abstract ObjectTarget newTarget();

    /** Strings (passwords, secret keys) that {@link ObjectTarget#describe()} must not contain. */
    protected Set<String> secrets() {
        return Set.of();
    }

    /**
     * Whether concurrent {@link ObjectTarget#putIfAbsent} calls on one key are guaranteed to report
     * exactly one winner. True for every adapter with an atomic create (a link, a conditional PUT);
     * an adapter overriding this must say so in its Javadoc.
     */
    protected boolean putIfAbsentIsExclusive() {
        return true;
    }

    @BeforeEach
    void openTarget() {
        target = newTarget();
        assertThat(target.list("")).as("a new target must start empty").isEmpty();
    }

    @AfterEach
    void closeTarget() {
        if (target != null) {
            target.close();
        }
    }

    @Test
    void putThenGetReturnsTheBytes() {
        byte[] data = "hello, tidemark".getBytes(UTF_8);

        assertThat(target.putIfAbsent("config", data)).isTrue();

        assertThat(target.get("config"))
                .hasValueSatisfying(read -> assertThat(read).isEqualTo(data));
    }

    @Test
    void putIfAbsentTwiceKeepsTheFirstContent() {
        byte[] first = "first".getBytes(UTF_8);
        byte[] second = "second, longer".getBytes(UTF_8);

        assertThat(target.putIfAbsent("chunks/ab/abcdef", first)).isTrue();
        assertThat(target.putIfAbsent("chunks/ab/abcdef", second)).isFalse();

        assertThat(target.get("chunks/ab/abcdef"))
                .hasValueSatisfying(read -> assertThat(read).isEqualTo(first));
        assertThat(target.list("")).containsExactly("chunks/ab/abcdef");
    }

    @Test
    void storedBytesAreNotSharedWithTheCaller() {
        byte[] data = {1, 2, 3};
        target.putIfAbsent("k", data);
        data[0] = 9;

        byte[] read = target.get("k").orElseThrow();
        read[1] = 9;

        assertThat(target.get("k"))
                .hasValueSatisfying(again -> assertThat(again).containsExactly(1, 2, 3));
    }

    @Test
    void readIntoABufferGivesTheLengthAndTheBytesOrSaysItDoesNotFit() {
        byte[] data = "chunk bytes".getBytes(UTF_8);
        target.putIfAbsent("chunks/cd/cdef", data);
        byte[] into = new byte[64];
        java.util.Arrays.fill(into, (byte) 7);

        assertThat(target.read("chunks/cd/cdef", into)).isEqualTo(data.length);
        assertThat(java.util.Arrays.copyOf(into, data.length)).isEqualTo(data);
        assertThat(target.read("chunks/cd/cdef", new byte[3])).isEqualTo(data.length);
        assertThat(target.read("chunks/cd/missing", into)).isEqualTo(-1);
        assertThat(target.read("missing/nested/key", into)).isEqualTo(-1);
    }

    @Test
    void getOfAMissingKeyIsEmpty() {
        assertThat(target.get("missing")).isEmpty();
        assertThat(target.get("missing/nested/key")).isEmpty();
    }

    @Test
    void existsReportsPresence() {
        assertThat(target.exists("index/1")).isFalse();

        target.putIfAbsent("index/1", bytes(10, 1));

        assertThat(target.exists("index/1")).isTrue();
        assertThat(target.exists("index")).as("a prefix is not an object").isFalse();
        assertThat(target.exists("index/2")).isFalse();
    }

    @Test
    void listReturnsExactlyTheKeysUnderThePrefixSorted() {
        List<String> keys =
                List.of("data/b", "index/x", "data/ab/3", "datum", "data/aa/2", "data/aa/1", "d", "data/aa/1x/deep/er");
        for (String key : keys) {
            assertThat(target.putIfAbsent(key, key.getBytes(UTF_8))).isTrue();
        }

        assertThat(target.list("data/"))
                .containsExactly("data/aa/1", "data/aa/1x/deep/er", "data/aa/2", "data/ab/3", "data/b");
        assertThat(target.list("data/a")).containsExactly("data/aa/1", "data/aa/1x/deep/er", "data/aa/2", "data/ab/3");
        assertThat(target.list("data/aa/1")).containsExactly("data/aa/1", "data/aa/1x/deep/er");
        assertThat(target.list("dat")).hasSize(6).isSorted();
        assertThat(target.list("")).hasSize(keys.size()).isSorted().containsExactlyInAnyOrderElementsOf(keys);
        assertThat(target.list("nothing/")).isEmpty();
        assertThat(target.list("index/x/")).isEmpty();
    }

    @Test
    void deleteRemovesTheObject() {
        target.putIfAbsent("manifests/0001", bytes(100, 2));

        target.delete("manifests/0001");

        assertThat(target.get("manifests/0001")).isEmpty();
        assertThat(target.exists("manifests/0001")).isFalse();
        assertThat(target.list("")).isEmpty();
        assertThat(target.putIfAbsent("manifests/0001", bytes(5, 3)))
                .as("a deleted key can be written again")
                .isTrue();
    }

    @Test
    void deleteOfAMissingKeyIsNotAnError() {
        target.delete("missing");
        target.delete("missing/nested/key");

        assertThat(target.list("")).isEmpty();
    }

    @Test
    void emptyObjectRoundTrips() {
        assertThat(target.putIfAbsent("empty", new byte[0])).isTrue();

        assertThat(target.get("empty"))
                .hasValueSatisfying(read -> assertThat(read).isEmpty());
        assertThat(target.exists("empty")).isTrue();
        assertThat(target.list("")).containsExactly("empty");
    }

    @Test
    void fiveMebibyteObjectRoundTrips() {
        byte[] data = bytes(FIVE_MIB, 4);

        assertThat(target.putIfAbsent("chunks/large", data)).isTrue();

        assertThat(target.get("chunks/large"))
                .hasValueSatisfying(read -> assertThat(read).hasSize(FIVE_MIB).isEqualTo(data));
    }

    @Test
    void keysWithSeveralSegmentsRoundTrip() {
        String key = "chunks/4f/4f3c/sub/dir/4f3c2a1b";
        byte[] data = bytes(64, 5);

        assertThat(target.putIfAbsent(key, data)).isTrue();

        assertThat(target.get(key)).hasValueSatisfying(read -> assertThat(read).isEqualTo(data));
        assertThat(target.list("chunks/4f/")).containsExactly(key);
        target.delete(key);
        assertThat(target.exists(key)).isFalse();
    }

    @Test
    void invalidKeysAreRejectedAsPermanent() {
        for (String key : List.of("", "/etc/passwd", "../escape", "a/../../b", "a//b", "a/", "./a")) {
            assertThatThrownBy(() -> target.putIfAbsent(key, new byte[1]))
                    .as("key '%s'", key)
                    .isInstanceOf(PermanentException.class)
                    .hasMessageContaining(key);
        }
        assertThat(target.list("")).isEmpty();
    }

    @Test
    void concurrentPutIfAbsentOfOneKeyHasOneWinner() throws InterruptedException, ExecutionException, TimeoutException {
        int writers = 8;
        List<byte[]> payloads = new ArrayList<>();
        for (int i = 0; i < writers; i++) {
            payloads.add(bytes(64 * 1024 + i, 100 + i));
        }
        ExecutorService pool = Executors.newFixedThreadPool(writers);
        try {
            CountDownLatch ready = new CountDownLatch(writers);
            CountDownLatch go = new CountDownLatch(1);
            List<Future<Boolean>> results = new ArrayList<>();
            for (byte[] payload : payloads) {
                results.add(pool.submit(() -> {
                    ready.countDown();
                    go.await();
                    return target.putIfAbsent("locks/race", payload);
                }));
            }
            assertThat(ready.await(30, TimeUnit.SECONDS)).isTrue();
            go.countDown();
            List<Integer> winners = new ArrayList<>();
            for (int i = 0; i < writers; i++) {
                if (results.get(i).get(120, TimeUnit.SECONDS)) {
                    winners.add(i);
                }
            }

            byte[] stored = target.get("locks/race").orElseThrow();
            if (putIfAbsentIsExclusive()) {
                assertThat(winners).hasSize(1);
                assertThat(stored).isEqualTo(payloads.get(winners.get(0)));
            } else {
                assertThat(winners).isNotEmpty();
                assertThat(payloads).anySatisfy(payload -> assertThat(stored).isEqualTo(payload));
            }
            assertThat(target.list("locks/")).containsExactly("locks/race");
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void describeIsNonEmptyAndFreeOfSecrets() {
        String description = target.describe();

        assertThat(description).isNotBlank();
        for (String secret : secrets()) {
            assertThat(description).doesNotContain(secret);
        }
    }

    /** Deterministic pseudo-random bytes; different seeds give different contents. */
    protected static byte[] bytes(int size, long seed) {
        byte[] data = new byte[size];
        new Random(seed).nextBytes(data);
        return data;
    }
}
