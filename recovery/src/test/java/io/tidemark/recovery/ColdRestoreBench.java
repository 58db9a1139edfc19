package io.tidemark.recovery;

import io.tidemark.core.Sleeper;
import io.tidemark.testkit.InMemoryColdStorage;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * Cold restore timing against a store that models the archive delay in real time
 * (docs/benchmarks.md §17): 1 000 archived chunks, a modelled restore delay of 2 s, polls every
 * 250 ms. Reports the wait against the modelled delay, the requests and the HEADs. Not a test: a
 * {@code main} in test scope.
 */
public final class ColdRestoreBench {

    private ColdRestoreBench() {}

    public static void main(String[] args) throws InterruptedException {
        for (int round = 0; round < 3; round++) {
            Duration delay = Duration.ofSeconds(2);
            InMemoryColdStorage store = new InMemoryColdStorage(Clock.systemUTC(), delay);
            List<String> keys = new ArrayList<>();
            for (int i = 0; i < 1000; i++) {
                String key = "chunks/" + i;
                store.putIfAbsent(key, new byte[] {(byte) i});
                store.transition(key, i % 2 == 0 ? "GLACIER" : "DEEP_ARCHIVE");
                keys.add(key);
            }
            ColdRestore restore = new ColdRestore(store, Clock.systemUTC(), Sleeper.SYSTEM, Duration.ofMillis(250));
            int[] reports = {0};
            long t0 = System.nanoTime();
            ColdRestore.Result r = restore.run(keys, 1, Duration.ofSeconds(30), p -> reports[0]++);
            long ms = (System.nanoTime() - t0) / 1_000_000;
            System.out.printf(
                    "round %d: %d objects, %d requests, waited %d ms for a modelled %d ms (wall %d ms), %d HEADs,"
                            + " %d progress reports, complete %s%n",
                    round,
                    r.objects(),
                    r.requested(),
                    r.waited().toMillis(),
                    delay.toMillis(),
                    ms,
                    store.heads(),
                    reports[0],
                    r.complete());
        }
    }
}
