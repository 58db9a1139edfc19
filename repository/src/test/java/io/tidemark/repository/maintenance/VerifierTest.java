package io.tidemark.repository.maintenance;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.format.ObjectKeys;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.testkit.FakeClock;
import io.tidemark.testkit.InMemoryObjectTarget;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Function;
import java.util.stream.Collectors;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class VerifierTest {

    final FakeClock clock = new FakeClock(Instant.parse("2026-11-24T00:00:00Z"));
    InMemoryObjectTarget memory;
    Intercepting target;
    Repository repo;
    Points points;
    Points.Pending base;
    Points.Pending child;

    @BeforeEach
    void setUp() {
        memory = new InMemoryObjectTarget("primary");
        target = new Intercepting(memory);
        repo = Repository.openOrInit(target, GarbageCollectorTest.CONFIG);
        points = new Points(repo, "vm1", 16, 7);
        base = points.full(8);
        child = points.incremental(base, List.of(5, 6)); // shares chunks 0-4 and 7 with base
    }

    Verifier.Report verify(boolean deep) {
        return new Verifier(repo, 2).verify(deep, null, Restorer.Progress.NONE, Restorer.Progress.NONE);
    }

    /** A chunk both points reference, and one only base references. */
    String sharedChunk() {
        return points.chunkKeys(base).stream()
                .filter(points.chunkKeys(child)::contains)
                .findFirst()
                .orElseThrow();
    }

    String baseOnlyChunk() {
        return points.chunkKeys(base).stream()
                .filter(k -> !points.chunkKeys(child).contains(k))
                .findFirst()
                .orElseThrow();
    }

    static void flipAByte(InMemoryObjectTarget t, String key) {
        byte[] b = t.get(key).orElseThrow();
        b[b.length - 1] ^= 0x40;
        t.delete(key);
        t.putIfAbsent(key, b);
    }

    @Test
    void aHealthyRepositoryIsCleanAndTheDeepCheckReadsEveryChunk() {
        Verifier.Report r = verify(true);
        assertThat(r.clean()).isTrue();
        assertThat(r.manifests()).isEqualTo(2);
        assertThat(r.chunks()).isEqualTo(10);
        assertThat(r.chunkBytesRead()).isEqualTo(10L * 64 * 1024);
        assertThat(verify(false).chunkBytesRead()).isZero();
    }

    @Test
    void findsMissingAndCorruptObjectsAndNamesTheRestorePointsTheyAffect() {
        String corrupt = sharedChunk();
        String missing = baseOnlyChunk();
        String missingPage = ObjectKeys.page(repo.root(io.tidemark.format.Digest.fromHex(
                        child.manifest().disks().get(0).index()))
                .pages()
                .get(1)); // chunks 4-7: rewritten by child, so only child's
        flipAByte(memory, corrupt);
        memory.delete(missing);
        memory.delete(missingPage);

        Verifier.Report metadata = verify(false);
        Map<String, Problem> byKey = byKey(metadata.problems());
        assertThat(byKey).containsOnlyKeys(missing, missingPage); // a corrupt chunk needs --deep
        assertThat(byKey.get(missing).kind()).isEqualTo(Problem.Kind.MISSING);
        assertThat(byKey.get(missing).affected()).containsExactly(points.ref(base));
        assertThat(byKey.get(missingPage).affected()).containsExactly(points.ref(child));

        Verifier.Report deep = verify(true);
        byKey = byKey(deep.problems());
        assertThat(byKey).containsOnlyKeys(missing, missingPage, corrupt);
        assertThat(byKey.get(corrupt).kind()).isEqualTo(Problem.Kind.CORRUPT);
        assertThat(byKey.get(corrupt).detail()).contains(corrupt);
        assertThat(byKey.get(corrupt).affected()).containsExactlyInAnyOrder(points.ref(base), points.ref(child));
    }

    @Test
    void anUnparsableManifestIsReported() {
        String key = ObjectKeys.manifest("vm1", base.manifest().id());
        memory.delete(key);
        memory.putIfAbsent(key, "{not json".getBytes());
        Problem p = verify(false).problems().get(0);
        assertThat(p.kind()).isEqualTo(Problem.Kind.BAD_MANIFEST);
        assertThat(p.key()).isEqualTo(key);
        assertThat(p.affected()).containsExactly(points.ref(base));
    }

    @Test
    void repairsFromAnotherRepositoryAndTheRepairedPointsRestoreBitIdentical(@TempDir Path tmp) throws Exception {
        InMemoryObjectTarget copy = copyOf(memory);
        Repository good = Repository.open(copy);
        String corrupt = sharedChunk();
        String missing = baseOnlyChunk();
        flipAByte(memory, corrupt);
        memory.delete(missing);
        String manifest = ObjectKeys.manifest("vm1", child.manifest().id());
        byte[] goodManifest = memory.get(manifest).orElseThrow();
        memory.delete(manifest);
        memory.putIfAbsent(manifest, "garbage".getBytes());

        Verifier verifier = new Verifier(repo, 2);
        Verifier.Report before = verifier.verify(true, null, Restorer.Progress.NONE, Restorer.Progress.NONE);
        assertThat(before.problems()).hasSize(3);
        List<Verifier.Repair> repairs = verifier.repair(before.problems(), good, clock);
        assertThat(repairs).allMatch(Verifier.Repair::repaired);
        assertThat(memory.get(manifest)).get().isEqualTo(goodManifest);
        assertThat(verify(true).clean()).isTrue();

        Repository reopened = Repository.open(memory); // no cached manifests
        for (Points.Pending p : List.of(base, child)) {
            Restorer.Result r = new Restorer(reopened, 2)
                    .restoreDisk(
                            p.manifest(), Points.DISK, tmp.resolve(p.manifest().id()), Restorer.Progress.NONE);
            assertThat(r.sha256()).isEqualTo(Points.sha256(p.image()));
        }
    }

    @Test
    void anObjectTheSourceLacksOrHoldsCorruptTooStaysReported() {
        InMemoryObjectTarget copy = copyOf(memory);
        String missing = baseOnlyChunk();
        String corrupt = sharedChunk();
        memory.delete(missing);
        copy.delete(missing);
        flipAByte(memory, corrupt);
        flipAByte(copy, corrupt);
        Verifier verifier = new Verifier(repo, 2);
        List<Verifier.Repair> repairs = verifier.repair(
                verifier.verify(true, null, Restorer.Progress.NONE, Restorer.Progress.NONE)
                        .problems(),
                Repository.open(copy),
                clock);
        assertThat(repairs).noneMatch(Verifier.Repair::repaired);
        Map<String, Verifier.Repair> byKey =
                repairs.stream().collect(Collectors.toMap(r -> r.problem().key(), Function.identity()));
        assertThat(byKey.get(missing).outcome()).contains("lacks it too");
        assertThat(byKey.get(missing).problem().affected()).containsExactly(points.ref(base));
        assertThat(byKey.get(corrupt).outcome()).contains("corrupt too");
        assertThat(verify(true).problems()).hasSize(2);
    }

    @Test
    void anObjectUnderObjectLockIsNotReplacedButTheRepairSaysWhatToDo() {
        InMemoryObjectTarget copy = copyOf(memory);
        String corrupt = sharedChunk();
        flipAByte(memory, corrupt);
        target.locks = key -> Optional.of(clock.instant().plus(Duration.ofDays(7)));
        Verifier verifier = new Verifier(repo, 2);
        List<Verifier.Repair> repairs = verifier.repair(
                verifier.verify(true, null, Restorer.Progress.NONE, Restorer.Progress.NONE)
                        .problems(),
                Repository.open(copy),
                clock);
        assertThat(repairs).singleElement().satisfies(r -> {
            assertThat(r.repaired()).isFalse();
            assertThat(r.outcome()).contains("Object Lock").contains("new object version");
        });
        assertThat(verify(true).problems()).extracting(Problem::key).containsExactly(corrupt);
    }

    @Test
    void aProblemOfAPointPrunedDuringTheCheckIsNotReported() {
        String missing = baseOnlyChunk();
        memory.delete(missing);
        // prune removes base while verify is listing chunks
        target.beforeList = prefix -> {
            if (prefix.equals(ObjectKeys.CHUNKS)) {
                memory.delete(ObjectKeys.manifest("vm1", base.manifest().id()));
            }
        };
        Repository r = Repository.open(target);
        assertThat(new Verifier(r, 1)
                        .verify(false, null, Restorer.Progress.NONE, Restorer.Progress.NONE)
                        .problems())
                .isEmpty();
    }

    static InMemoryObjectTarget copyOf(InMemoryObjectTarget from) {
        InMemoryObjectTarget to = new InMemoryObjectTarget("copy");
        for (String k : from.keys()) {
            to.putIfAbsent(k, from.get(k).orElseThrow());
        }
        return to;
    }

    static Map<String, Problem> byKey(List<Problem> problems) {
        return problems.stream().collect(Collectors.toMap(Problem::key, Function.identity()));
    }
}
