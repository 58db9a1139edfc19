package io.tidemark.workers;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.junit.jupiter.api.Test;

/** A thread lowers its own CPU priority, never raises it, and a pool's threads lower themselves. */
class NicenessTest {

    /** The nice value of thread {@code tid} as {@code ps} reports it: a witness independent of the code under test. */
    private static int psNice(int tid) throws Exception {
        Process p = new ProcessBuilder(
                        "ps",
                        "-L",
                        "-o",
                        "tid=,ni=",
                        "-p",
                        Long.toString(ProcessHandle.current().pid()))
                .redirectErrorStream(true)
                .start();
        String out = new String(p.getInputStream().readAllBytes());
        p.waitFor();
        for (String line : out.strip().split("\n")) {
            String[] f = line.strip().split("\\s+");
            if (Integer.parseInt(f[0]) == tid) {
                return Integer.parseInt(f[1]);
            }
        }
        throw new AssertionError("ps lists no thread " + tid + ":\n" + out);
    }

    /** Runs {@code body} on a new thread and returns its result (a lowered thread is thrown away). */
    private static <T> T onNewThread(java.util.concurrent.Callable<T> body) throws Exception {
        CompletableFuture<T> result = new CompletableFuture<>();
        Thread t = new Thread(() -> {
            try {
                result.complete(body.call());
            } catch (Exception | AssertionError e) {
                result.completeExceptionally(e);
            }
        });
        t.start();
        return result.get();
    }

    @Test
    void aThreadLowersItsOwnPriorityAndNoOtherThreads() throws Exception {
        int base = Niceness.of(Niceness.currentThreadId().orElseThrow()).orElseThrow();
        int want = Math.max(base + 1, 7);
        int[] tids = onNewThread(() -> {
            assertThat(Niceness.lowerCurrentThread(want)).isTrue();
            return new int[] {
                Niceness.currentThreadId().orElseThrow(),
                psNice(Niceness.currentThreadId().orElseThrow())
            };
        });
        assertThat(tids[1]).isEqualTo(want);
        assertThat(psNice(Niceness.currentThreadId().orElseThrow())).isEqualTo(base);
    }

    @Test
    void aLowerPriorityIsKeptWhenAHigherOneIsAskedForAndZeroChangesNothing() throws Exception {
        int base = Niceness.of(Niceness.currentThreadId().orElseThrow()).orElseThrow();
        int low = Math.max(base, 12);
        int[] nices = onNewThread(() -> {
            Niceness.lowerCurrentThread(low);
            assertThat(Niceness.lowerCurrentThread(5)).isTrue();
            int afterFive = psNice(Niceness.currentThreadId().orElseThrow());
            assertThat(Niceness.lowerCurrentThread(0)).isTrue();
            return new int[] {afterFive, psNice(Niceness.currentThreadId().orElseThrow())};
        });
        assertThat(nices).containsExactly(low, low);
        assertThat(onNewThread(() -> {
                    Niceness.lowerCurrentThread(0);
                    return psNice(Niceness.currentThreadId().orElseThrow());
                }))
                .isEqualTo(base);
    }

    @Test
    void aPoolsThreadsLowerThemselvesAsTheyStartAndTheSubmitterStaysAsItWas() throws Exception {
        int base = Niceness.of(Niceness.currentThreadId().orElseThrow()).orElseThrow();
        int want = Math.max(base + 1, 9);
        ExecutorService pool = Executors.newFixedThreadPool(2, r -> new Thread(Niceness.lowering(want, r)));
        try {
            int pooled = pool.submit(() -> psNice(Niceness.currentThreadId().orElseThrow()))
                    .get();
            assertThat(pooled).isEqualTo(want);
        } finally {
            pool.shutdownNow();
        }
        assertThat(psNice(Niceness.currentThreadId().orElseThrow())).isEqualTo(base);
    }

    @Test
    void aNiceValueOutsideZeroToNineteenIsRefused() {
        assertThatThrownBy(() -> Niceness.lowerCurrentThread(20))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("between 0 and 19");
        assertThatThrownBy(() -> Niceness.lowering(-1, () -> {})).isInstanceOf(IllegalArgumentException.class);
    }
}
