package io.tidemark.repository;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.CorruptObjectException;
import io.tidemark.core.PermanentException;
import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.Digest;
import io.tidemark.format.FormatConstants;
import io.tidemark.format.IndexRoot;
import io.tidemark.format.ObjectKeys;
import io.tidemark.format.Passphrase;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.testkit.InMemoryObjectTarget;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class EncryptedRepositoryTest {

    private static final int CHUNK = 64 * 1024;
    private static final RepositoryConfig CONFIG =
            new RepositoryConfig(FormatConstants.REPOSITORY_FORMAT_VERSION, CHUNK, 4);
    private static final int ITERATIONS = FormatConstants.MIN_KDF_ITERATIONS;
    private static final String SECRET = "Tr0ub4dor&3-unit-test";
    private static final Passphrase PASSPHRASE = Passphrase.of(SECRET, "test");
    /** A pattern written into the image; it must never be visible in stored objects. */
    private static final byte[] MARKER = "TIDEMARK-PLAINTEXT-MARKER-0123456789".getBytes(StandardCharsets.US_ASCII);

    @TempDir
    Path tmp;

    private final InMemoryObjectTarget target = new InMemoryObjectTarget("enc");
    private final Repository repo = Repository.openOrInit(target, CONFIG, PASSPHRASE, ITERATIONS);

    /** 10 chunks: markers (compressible), random, zero, and a duplicate of chunk 0. */
    static byte[] image(long seed) {
        byte[] img = new byte[10 * CHUNK];
        for (int c : new int[] {0, 1, 2}) {
            for (int off = c * CHUNK; off + MARKER.length <= (c + 1) * CHUNK; off += 100) {
                System.arraycopy(MARKER, 0, img, off, MARKER.length);
            }
            img[c * CHUNK + 7] = (byte) c; // chunks 0..2 differ
        }
        byte[] random = new byte[4 * CHUNK];
        new Random(seed).nextBytes(random);
        System.arraycopy(random, 0, img, 3 * CHUNK, random.length);
        System.arraycopy(img, 0, img, 9 * CHUNK, CHUNK); // chunk 9 = chunk 0
        return img; // chunks 7, 8 stay zero
    }

    /** Backs {@code img} up as one restore point of VM "vm1". */
    static Manifest backup(Repository repo, byte[] img, String id) {
        var index = repo.newIndex(img.length, Optional.empty());
        for (int c = 0; c * CHUNK < img.length; c++) {
            byte[] chunk = Arrays.copyOfRange(img, c * CHUNK, (c + 1) * CHUNK);
            index.set(c, repo.putChunk(chunk, CHUNK).digest());
        }
        Digest root = index.finish();
        Instant t = Instant.parse("2026-11-24T00:00:00Z");
        Manifest m = new Manifest(
                1,
                id,
                "vm1",
                "hv1",
                "job-" + id,
                t,
                t,
                ConsistencyAchieved.CRASH,
                Trigger.manual(),
                "pol",
                Optional.empty(),
                List.of(new DiskEntry("sda", img.length, CHUNK, root.hex(), "cp", Optional.empty(), 0, 0)));
        repo.commit(m);
        return m;
    }

    private Path restore(Repository r, Manifest m) {
        Path out = tmp.resolve("restored-" + System.nanoTime() + ".raw");
        new Restorer(r, 2).restoreDisk(m, "sda", out, Restorer.Progress.NONE);
        return out;
    }

    @Test
    void aPatchIsEncryptedAndNamedLikeAChunkAndRestores() throws IOException {
        // ADR 15: a patch of the marker over chunk 3 (random) of an encrypted point
        byte[] img = image(2);
        Manifest full = backup(repo, img, "20261124T000000.000Z-aaaaaa");
        var index = repo.newIndex(
                img.length,
                Optional.of(repo.root(Digest.fromHex(full.disks().get(0).index()))));
        var was = index.parentEntry(3);
        Repository.StoredChunk stored =
                repo.putPatch(io.tidemark.format.ChunkPatch.of(was.chunk(), CHUNK, java.util.Map.of(100, MARKER)));
        index.setPatched(3, was.chunk(), stored.digest());
        Digest root = index.finish();
        Manifest patched = commitChild(full, root, img.length);
        System.arraycopy(MARKER, 0, img, 3 * CHUNK + 100, MARKER.length);

        Path out = restore(Repository.open(target, PassphraseSource.of(PASSPHRASE)), patched);
        assertThat(Files.readAllBytes(out)).isEqualTo(img);
        byte[] object = target.get(ObjectKeys.chunk(stored.digest())).orElseThrow();
        assertThat(object[6]).as("encrypted flag").isEqualTo(FormatConstants.FLAG_ENCRYPTED);
        assertThat(indexOf(object, MARKER)).isNegative();
        byte[] payload = io.tidemark.format.ChunkPatch.of(was.chunk(), CHUNK, java.util.Map.of(100, MARKER))
                .toBytes();
        assertThat(stored.digest()).as("an HMAC name").isNotEqualTo(Digest.sha256(payload));
    }

    @Test
    void aPackOfPatchesIsEncryptedAndNamedLikeAChunkAndRestores() throws IOException {
        // ADR 26: the patches of chunks 1 and 3 (one page) of an encrypted point, in one pack
        byte[] img = image(2);
        Manifest full = backup(repo, img, "20261124T000000.000Z-aaaaaa");
        var index = repo.newIndex(
                img.length,
                Optional.of(repo.root(Digest.fromHex(full.disks().get(0).index()))));
        for (int c : new int[] {1, 3}) {
            var was = index.parentEntry(c);
            index.setPatched(c, io.tidemark.format.ChunkPatch.of(was.chunk(), CHUNK, java.util.Map.of(100, MARKER)));
            System.arraycopy(MARKER, 0, img, c * CHUNK + 100, MARKER.length);
        }
        Digest root = index.finish();
        Manifest patched = commitChild(full, root, img.length);

        Path out = restore(Repository.open(target, PassphraseSource.of(PASSPHRASE)), patched);
        assertThat(Files.readAllBytes(out)).isEqualTo(img);
        var page = repo.page(repo.root(root).pages().get(0));
        assertThat(page.packed(3)).isTrue();
        assertThat(page.patch(1)).isEqualTo(page.patch(3));
        byte[] object = target.get(ObjectKeys.chunk(page.patch(3))).orElseThrow();
        assertThat(object[6]).as("encrypted flag").isEqualTo(FormatConstants.FLAG_ENCRYPTED);
        assertThat(indexOf(object, MARKER)).isNegative();
        assertThat(page.patch(3))
                .as("an HMAC name")
                .isNotEqualTo(Digest.sha256(repo.pack(page.patch(3)).toBytes()));
    }

    /** Commits the point of index {@code root}, a child of {@code full}. */
    private Manifest commitChild(Manifest full, Digest root, long size) {
        Manifest child = new Manifest(
                1,
                "20261124T000100.000Z-bbbbbb",
                "vm1",
                "hv1",
                "job-b",
                full.capturedAt().plusSeconds(60),
                full.committedAt().plusSeconds(60),
                ConsistencyAchieved.CRASH,
                Trigger.manual(),
                "pol",
                Optional.of(full.id()),
                List.of(new DiskEntry("sda", size, CHUNK, root.hex(), "cp2", Optional.empty(), 0, 0)));
        repo.commit(child);
        return child;
    }

    @Test
    void roundTripWithHmacNamesDedupAndNoPlaintextStored() throws IOException {
        byte[] img = image(1);
        Manifest m = backup(repo, img, "20261124T000000.000Z-aaaaaa");
        Path out = restore(Repository.open(target, PassphraseSource.of(PASSPHRASE)), m);
        assertThat(Files.readAllBytes(out)).isEqualTo(img);

        // chunk 9 = chunk 0 is stored once; zero chunks never: 7 chunks
        assertThat(target.list(ObjectKeys.CHUNKS)).hasSize(7);
        // names are HMACs, not SHA-256 of the plaintext
        String sha = Digest.sha256(img, 0, CHUNK).hex();
        assertThat(target.list("")).noneMatch(k -> k.contains(sha));
        // no stored object shows the marker, the passphrase or the manifest's VM name as plaintext
        for (String key : target.list("")) {
            byte[] bytes = target.get(key).orElseThrow();
            assertThat(indexOf(bytes, MARKER)).as(key).isEqualTo(-1);
            assertThat(indexOf(bytes, SECRET.getBytes(StandardCharsets.UTF_8)))
                    .as(key)
                    .isEqualTo(-1);
            if (key.startsWith(ObjectKeys.MANIFESTS)) {
                assertThat(indexOf(bytes, "\"vm1\"".getBytes(StandardCharsets.UTF_8)))
                        .isEqualTo(-1);
            }
        }
        // the same content backed up again adds nothing
        long objects = target.list("").size();
        assertThat(repo.putChunk(Arrays.copyOf(img, CHUNK), CHUNK).added()).isFalse();
        backup(repo, img, "20261124T000001.000Z-bbbbbb");
        assertThat(target.list("")).hasSize((int) objects + 1); // only the new manifest
    }

    @Test
    void sameContentSameNameWithinARepositoryOtherNamesInAnother() {
        byte[] chunk = Arrays.copyOf(image(2), CHUNK);
        Digest here = repo.putChunk(chunk, CHUNK).digest();
        Repository reopened = Repository.open(target, PassphraseSource.of(PASSPHRASE));
        assertThat(reopened.putChunk(chunk.clone(), CHUNK).digest()).isEqualTo(here);
        Repository other = Repository.openOrInit(new InMemoryObjectTarget("other"), CONFIG, PASSPHRASE, ITERATIONS);
        assertThat(other.putChunk(chunk, CHUNK).digest()).isNotEqualTo(here);
        assertThat(other.config()).isNotEqualTo(repo.config());
    }

    @Test
    void aFlippedByteInAChunkPageRootOrManifestIsACorruptObjectNamingIt() {
        Manifest m = backup(repo, image(3), "20261124T000000.000Z-cccccc");
        Digest rootDigest = Digest.fromHex(m.disk("sda").orElseThrow().index());
        IndexRoot root = repo.root(rootDigest);
        Digest pageDigest = root.pages().get(0);
        Digest chunkDigest = repo.page(pageDigest).get(0);
        List<String> keys = List.of(
                ObjectKeys.chunk(chunkDigest),
                ObjectKeys.page(pageDigest),
                ObjectKeys.root(rootDigest),
                ObjectKeys.manifest("vm1", m.id()));
        for (String key : keys) {
            byte[] good = target.get(key).orElseThrow();
            byte[] bad = good.clone();
            bad[bad.length / 2] ^= 0x10;
            target.delete(key);
            target.putIfAbsent(key, bad);
            Repository fresh = Repository.open(target, PassphraseSource.of(PASSPHRASE)); // no manifest cache
            assertThatThrownBy(() -> {
                        switch (key.substring(0, key.indexOf('/'))) {
                            case "chunks" -> fresh.chunk(chunkDigest, CHUNK);
                            case "pages" -> fresh.page(pageDigest);
                            case "roots" -> fresh.root(rootDigest);
                            default -> fresh.manifest("vm1", m.id());
                        }
                    })
                    .as(key)
                    .isInstanceOf(CorruptObjectException.class)
                    .hasMessageContaining(key);
            target.delete(key);
            target.putIfAbsent(key, good);
        }
    }

    @Test
    void swappedObjectsAreDetected() {
        Manifest a = backup(repo, image(4), "20261124T000000.000Z-dddddd");
        Manifest b = backup(repo, image(5), "20261124T000001.000Z-eeeeee");
        // chunk 3 of each image is random, so they differ; put A's object under B's name
        Digest da = repo.page(
                        repo.root(Digest.fromHex(a.disk("sda").orElseThrow().index()))
                                .pages()
                                .get(0))
                .get(3);
        Digest db = repo.page(
                        repo.root(Digest.fromHex(b.disk("sda").orElseThrow().index()))
                                .pages()
                                .get(0))
                .get(3);
        String kb = ObjectKeys.chunk(db);
        target.delete(kb);
        target.putIfAbsent(kb, target.get(ObjectKeys.chunk(da)).orElseThrow());
        assertThatThrownBy(() -> repo.chunk(db, CHUNK))
                .isInstanceOf(CorruptObjectException.class)
                .hasMessageContaining(kb)
                .hasMessageContaining("authentication failed");
        // a manifest moved to another restore point's name
        String ka = ObjectKeys.manifest("vm1", a.id());
        String moved = ObjectKeys.manifest("vm1", "20261124T000002.000Z-ffffff");
        target.putIfAbsent(moved, target.get(ka).orElseThrow());
        Repository fresh = Repository.open(target, PassphraseSource.of(PASSPHRASE));
        assertThatThrownBy(() -> fresh.manifest("vm1", "20261124T000002.000Z-ffffff"))
                .isInstanceOf(CorruptObjectException.class)
                .hasMessageContaining(moved);
    }

    @Test
    void wrongOrMissingPassphraseFailsWithoutLeakingIt() {
        String wrong = "not-the-passphrase-42";
        assertThatThrownBy(() -> Repository.open(target, PassphraseSource.of(Passphrase.of(wrong, "test"))))
                .isInstanceOf(PermanentException.class)
                .hasMessageStartingWith("wrong passphrase for repository memory://enc")
                .message()
                .doesNotContain(wrong)
                .doesNotContain(SECRET);
        assertThatThrownBy(() -> Repository.open(target))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("is encrypted")
                .hasMessageContaining("TIDEMARK_PASSPHRASE");
        // an unencrypted repository never asks for a passphrase
        InMemoryObjectTarget plain = new InMemoryObjectTarget("plain");
        Repository.openOrInit(plain, CONFIG);
        assertThat(Repository.open(plain, PassphraseSource.NONE).encrypted()).isFalse();
        assertThat(repo.encrypted()).isTrue();
    }

    @Test
    void changingThePassphraseRewrapsOnlyTheKeys() throws IOException {
        byte[] img = image(6);
        Manifest m = backup(repo, img, "20261124T000000.000Z-abcdef");
        List<String> before = target.list("");
        Passphrase next = Passphrase.of("a brand new passphrase", "test");
        String added = repo.changePassphrase(next, ITERATIONS);
        List<String> after = target.list("");
        assertThat(after).contains(added).hasSameSizeAs(before);
        assertThat(after.stream().filter(k -> !k.startsWith(ObjectKeys.KEYS)))
                .containsExactlyElementsOf(before.stream()
                        .filter(k -> !k.startsWith(ObjectKeys.KEYS))
                        .toList());
        assertThatThrownBy(() -> Repository.open(target, PassphraseSource.of(PASSPHRASE)))
                .hasMessageContaining("wrong passphrase");
        Repository withNew = Repository.open(target, PassphraseSource.of(next));
        assertThat(Files.readAllBytes(restore(withNew, m))).isEqualTo(img);
    }

    @Test
    void aChangeCutShortLeavesARepositoryThatOpensWithEitherPassphrase() {
        backup(repo, image(7), "20261124T000000.000Z-abcdef");
        Passphrase next = Passphrase.of("the next passphrase", "test");
        // the process dies where the old key object would be removed
        Repository dying = Repository.open(new DeleteFailsTarget(target), PassphraseSource.of(PASSPHRASE));
        assertThatThrownBy(() -> dying.changePassphrase(next, ITERATIONS)).hasMessageContaining("killed");
        assertThat(target.list(ObjectKeys.KEYS)).hasSize(2);
        assertThat(Repository.open(target, PassphraseSource.of(PASSPHRASE)).manifests("vm1"))
                .hasSize(1);
        assertThat(Repository.open(target, PassphraseSource.of(next)).manifests("vm1"))
                .hasSize(1);
    }

    @Test
    void aReplicaGetsTheKeyObjectsAndConfigAndOpensWithThePassphrase() throws IOException {
        byte[] img = image(8);
        Manifest m = backup(repo, img, "20261124T000000.000Z-abcdef");
        InMemoryObjectTarget remote = new InMemoryObjectTarget("remote");
        Repository replica = repo.replicaOn(remote);
        assertThat(replica.config()).isEqualTo(repo.config());
        assertThat(remote.list(ObjectKeys.KEYS)).isEqualTo(target.list(ObjectKeys.KEYS));
        // ship everything as stored (what the replicator does), then read it with the passphrase alone
        for (String key : target.list("")) {
            remote.putIfAbsent(key, target.get(key).orElseThrow());
        }
        Repository opened = Repository.open(remote, PassphraseSource.of(PASSPHRASE));
        assertThat(Files.readAllBytes(restore(opened, opened.latest("vm1").orElseThrow())))
                .isEqualTo(img);
        assertThat(repo.storedManifest("vm1", m.id()))
                .get()
                .isEqualTo(target.get(ObjectKeys.manifest("vm1", m.id())).orElseThrow());
    }

    static int indexOf(byte[] haystack, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= haystack.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (haystack[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }

    /** A target whose deletes fail, as if the process died before removing anything. */
    private record DeleteFailsTarget(InMemoryObjectTarget inner) implements io.tidemark.core.target.ObjectTarget {
        @Override
        public String describe() {
            return inner.describe();
        }

        @Override
        public boolean putIfAbsent(String key, byte[] data) {
            return inner.putIfAbsent(key, data);
        }

        @Override
        public Optional<byte[]> get(String key) {
            return inner.get(key);
        }

        @Override
        public boolean exists(String key) {
            return inner.exists(key);
        }

        @Override
        public List<String> list(String prefix) {
            return inner.list(prefix);
        }

        @Override
        public void delete(String key) {
            throw new IllegalStateException("killed");
        }

        @Override
        public void close() {}
    }
}
