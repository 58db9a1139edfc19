package io.tidemark.replicator;

import io.tidemark.format.Digest;
import io.tidemark.format.ObjectKeys;
import io.tidemark.testkit.InMemoryObjectTarget;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * The tier ledger at scale (docs/benchmarks.md §17): writes and reads back a ledger of {@code N}
 * chunks (default 10⁶; 1 in 3 tagged GLACIER) in memory, printing its size and the time of each.
 * Not a test: a {@code main} in test scope.
 */
public final class TierLedgerBench {

    private TierLedgerBench() {}

    public static void main(String[] args) {
        int n = args.length > 0 ? Integer.parseInt(args[0]) : 1_000_000;
        Random random = new Random(1);
        Map<String, String> tags = new HashMap<>();
        byte[] d = new byte[32];
        for (int i = 0; i < n; i++) {
            random.nextBytes(d);
            tags.put(ObjectKeys.chunk(Digest.of(d)), i % 3 == 0 ? "GLACIER" : "");
        }
        InMemoryObjectTarget target = new InMemoryObjectTarget("ledger-bench");
        for (int round = 0; round < 3; round++) {
            TierLedger.Read prior = TierLedger.read(target);
            long t0 = System.nanoTime();
            TierLedger.write(target, prior, Instant.now(), Instant.now(), tags, List.of());
            long writeMs = (System.nanoTime() - t0) / 1_000_000;
            String key = target.list(TierLedger.PREFIX).get(0);
            long bytes = target.get(key).orElseThrow().length;
            t0 = System.nanoTime();
            TierLedger.Read back = TierLedger.read(target);
            long readMs = (System.nanoTime() - t0) / 1_000_000;
            System.out.printf(
                    "chunks %d: ledger %d bytes (%.1f per chunk), write %d ms, read %d ms, read back %d entries%n",
                    n, bytes, bytes / (double) n, writeMs, readMs, back.tags().size());
        }
    }
}
