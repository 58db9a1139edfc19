package io.tidemark.format;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.CorruptObjectException;
import io.tidemark.core.PermanentException;
import io.tidemark.core.repository.Manifest;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.HexFormat;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.Test;

class EncryptionFormatsTest {

    private static final Passphrase GOLDEN_PASSPHRASE = Passphrase.of("correct horse battery staple", "test");
    private static final String GOLDEN_CHUNK_KEY =
            "chunks/32/323099fe4b8d0142d443285c43e803def015b956e03a9208d649ba7a00dd6e32";
    private static final SecureRandom RANDOM = new SecureRandom();

    private final MasterKeys keys = MasterKeys.generate(RANDOM);

    private static byte[] golden(String name) throws IOException {
        try (InputStream in = EncryptionFormatsTest.class.getResourceAsStream("/golden/" + name)) {
            return in.readAllBytes();
        }
    }

    private static MasterKeys goldenKeys() throws IOException {
        return WrappedKeys.parse("keys/golden", golden("key-v1.json"))
                .unwrap(GOLDEN_PASSPHRASE, RANDOM)
                .orElseThrow();
    }

    @Test
    void goldenKeyConfigChunkAndManifestParseForever() throws IOException {
        WrappedKeys wrapped = WrappedKeys.parse("keys/golden", golden("key-v1.json"));
        assertThat(wrapped.iterations()).isEqualTo(1000);
        assertThat(wrapped.unwrap(Passphrase.of("wrong horse", "test"), RANDOM)).isEmpty();
        MasterKeys k = goldenKeys();

        RepositoryConfig config = RepositoryConfig.parse("config", golden("config-encrypted-v1.json"));
        assertThat(config.encrypted()).isTrue();
        assertThat(config.chunkSize()).isEqualTo(262144);
        assertThat(config.encryption().orElseThrow().keyCheck()).isEqualTo(k.keyCheck());
        assertThat(RepositoryConfig.parse("config", config.toBytes())).isEqualTo(config);

        byte[] expected = "Tidemark golden chunk: the quick brown fox jumps over the lazy dog. "
                .repeat(40)
                .getBytes(StandardCharsets.US_ASCII);
        Digest name = Digest.fromHex(GOLDEN_CHUNK_KEY.substring(GOLDEN_CHUNK_KEY.lastIndexOf('/') + 1));
        assertThat(k.name(expected)).isEqualTo(name);
        assertThat(ObjectCodec.decode(GOLDEN_CHUNK_KEY, golden("chunk-encrypted-v1.bin"), name, k))
                .isEqualTo(expected);

        String manifestKey = ObjectKeys.manifest("web-1", "20261124T013000.123Z-3fa9c1");
        Manifest m = ManifestCodec.decode(
                manifestKey, ObjectCodec.decodeNamed(manifestKey, golden("manifest-encrypted-v1.bin"), k));
        assertThat(m).isEqualTo(ManifestCodec.decode("plain", golden("manifest-v1.json")));
    }

    @Test
    void unencryptedConfigIsUnchanged() throws IOException {
        RepositoryConfig plain = RepositoryConfig.parse("config", golden("config-v1.json"));
        assertThat(plain).isEqualTo(RepositoryConfig.defaults());
        assertThat(plain.encrypted()).isFalse();
        assertThat(new String(plain.toBytes(), StandardCharsets.UTF_8)).doesNotContain("encryption");
    }

    @Test
    void encryptedHeaderLayoutIsExact() throws IOException {
        byte[] obj = golden("chunk-encrypted-v1.bin");
        // TMOB, version 1, codec zstd, flags 1 (encrypted), reserved, plaintext length 2720
        assertThat(HexFormat.of().formatHex(obj, 0, FormatConstants.OBJECT_HEADER_BYTES))
                .isEqualTo("544d4f420101010000000aa0");
        byte[] random = new byte[1000];
        new Random(3).nextBytes(random);
        byte[] enc = ObjectCodec.encode(random, random.length, "chunks/xx/y", keys);
        assertThat(enc).hasSize(FormatConstants.OBJECT_HEADER_BYTES + FormatConstants.ENCRYPTION_OVERHEAD_BYTES + 1000);
        assertThat(enc[5]).isEqualTo(FormatConstants.CODEC_NONE);
    }

    @Test
    void roundTripsAndEveryTamperedByteIsDetectedNamingTheKey() {
        byte[] compressible = new byte[262144];
        compressible[7] = 1;
        byte[] random = new byte[262144];
        new Random(1).nextBytes(random);
        for (byte[] plain : new byte[][] {compressible, random}) {
            Digest d = keys.name(plain);
            String key = ObjectKeys.chunk(d);
            byte[] obj = ObjectCodec.encode(plain, plain.length, key, keys);
            assertThat(ObjectCodec.decode(key, obj, d, keys)).isEqualTo(plain);
            // header, nonce, ciphertext and tag: flipping any byte fails authentication
            for (int at : new int[] {5, 8, 13, 30, obj.length / 2, obj.length - 1}) {
                byte[] bad = obj.clone();
                bad[at] ^= 0x01;
                assertThatThrownBy(() -> ObjectCodec.decode(key, bad, d, keys))
                        .as("flipped byte %d", at)
                        .isInstanceOf(CorruptObjectException.class)
                        .hasMessageContaining(key);
            }
        }
    }

    @Test
    void anObjectUnderAnotherNameOrKindFailsAuthentication() {
        byte[] a = "page A".getBytes(StandardCharsets.UTF_8);
        byte[] b = "page B".getBytes(StandardCharsets.UTF_8);
        String keyA = ObjectKeys.page(keys.name(a));
        String keyB = ObjectKeys.page(keys.name(b));
        byte[] objA = ObjectCodec.encode(a, a.length, keyA, keys);
        // A's object stored under B's name
        assertThatThrownBy(() -> ObjectCodec.decode(keyB, objA, keys.name(b), keys))
                .isInstanceOf(CorruptObjectException.class)
                .hasMessageContaining(keyB)
                .hasMessageContaining("authentication failed");
        // same name, another kind (a page presented as a root)
        String asRoot = ObjectKeys.root(keys.name(a));
        assertThatThrownBy(() -> ObjectCodec.decode(asRoot, objA, keys.name(a), keys))
                .isInstanceOf(CorruptObjectException.class)
                .hasMessageContaining(asRoot);
        // another repository's keys
        MasterKeys other = MasterKeys.generate(RANDOM);
        assertThatThrownBy(() -> ObjectCodec.decode(keyA, objA, keys.name(a), other))
                .isInstanceOf(CorruptObjectException.class);
    }

    @Test
    void plainAndEncryptedObjectsAreNotMixedUp() {
        byte[] plain = "abc".getBytes(StandardCharsets.UTF_8);
        byte[] unencrypted = ObjectCodec.encode(plain);
        assertThatThrownBy(() -> ObjectCodec.decode("chunks/ab/x", unencrypted, keys.name(plain), keys))
                .isInstanceOf(CorruptObjectException.class)
                .hasMessageContaining("not encrypted");
        byte[] encrypted = ObjectCodec.encode(plain, plain.length, "chunks/ab/x", keys);
        assertThatThrownBy(() -> ObjectCodec.decode("chunks/ab/x", encrypted, Digest.sha256(plain)))
                .isInstanceOf(CorruptObjectException.class)
                .hasMessageContaining("encrypted");
    }

    @Test
    void namesAreKeyedHmacs() {
        byte[] data = "same content".getBytes(StandardCharsets.UTF_8);
        MasterKeys other = MasterKeys.generate(RANDOM);
        assertThat(keys.name(data)).isEqualTo(keys.name(data.clone()));
        assertThat(keys.name(data)).isNotEqualTo(other.name(data));
        assertThat(keys.name(data)).isNotEqualTo(Digest.sha256(data));
        assertThat(keys.keyCheck()).isNotEqualTo(other.keyCheck());
    }

    @Test
    void wrappingRoundTripsAndEachWrapIsFresh() {
        Passphrase p = Passphrase.of("s3cret passphrase", "test");
        WrappedKeys w1 = WrappedKeys.wrap(keys, p, 1000, RANDOM);
        WrappedKeys w2 = WrappedKeys.wrap(keys, p, 1000, RANDOM);
        assertThat(w1.salt()).isNotEqualTo(w2.salt());
        WrappedKeys back = WrappedKeys.parse("keys/x", w1.toBytes());
        assertThat(back).isEqualTo(w1);
        MasterKeys unwrapped = back.unwrap(p, RANDOM).orElseThrow();
        assertThat(unwrapped.keyCheck()).isEqualTo(keys.keyCheck());
        assertThat(back.unwrap(Passphrase.of("s3cret passphrasf", "test"), RANDOM))
                .isEmpty();
        // a tampered key object is refused like a wrong passphrase
        byte[] wrapped = Base64.getDecoder().decode(w1.wrapped());
        wrapped[0] ^= 1;
        WrappedKeys tampered = new WrappedKeys(
                w1.version(),
                w1.kdf(),
                w1.iterations(),
                w1.salt(),
                w1.nonce(),
                Base64.getEncoder().encodeToString(wrapped));
        assertThat(tampered.unwrap(p, RANDOM)).isEmpty();
        assertThatThrownBy(() -> WrappedKeys.wrap(keys, p, 10, RANDOM)).hasMessageContaining("at least 1000");
        assertThatThrownBy(() -> WrappedKeys.parse("keys/bad", "{\"version\":9}".getBytes(StandardCharsets.UTF_8)))
                .isInstanceOf(CorruptObjectException.class)
                .hasMessageContaining("keys/bad");
    }

    @Test
    void noSecretInAnyToStringOrMessage() {
        String secret = "hunter2-very-secret";
        Passphrase p = Passphrase.of(secret, "test");
        WrappedKeys w = WrappedKeys.wrap(keys, p, 1000, RANDOM);
        for (Object o : new Object[] {p, keys, w, RepositoryConfig.defaults().encryptedWith(keys)}) {
            assertThat(o.toString())
                    .doesNotContain(secret)
                    .doesNotContain(w.wrapped())
                    .doesNotContain(w.salt());
        }
        assertThat(p.toString()).isEqualTo("Passphrase[redacted]");
        assertThat(keys.toString()).isEqualTo("MasterKeys[redacted]");
        assertThatThrownBy(() -> Passphrase.of("  \n", "file /etc/tm.pass"))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("/etc/tm.pass");
        assertThat(Passphrase.of(" a b \n", "x")).isEqualTo(Passphrase.of("a b", "y"));
        assertThat(Optional.of(p).toString()).doesNotContain(secret);
    }
}
