package io.tidemark.targets.rados;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.testkit.ceph.CephCluster;
import io.tidemark.testkit.ceph.CephClusterExtension;
import io.tidemark.testkit.contract.ObjectTargetContract;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** The contract and the RADOS specifics of {@link RadosObjectTarget} against a real single-node Ceph. */
@ExtendWith(CephClusterExtension.class)
class RadosObjectTargetIT extends ObjectTargetContract {

    private static final String POOL = "tidemark-rados-it";
    private static final AtomicInteger PREFIXES = new AtomicInteger();
    private static CephCluster ceph;

    @BeforeAll
    static void createPool(CephCluster shared) {
        ceph = shared;
        ceph.createPool(POOL);
    }

    /** Configured as for a remote cluster: monitors and key only, no ceph.conf. */
    private static RadosTargetConfig config(String keyPrefix) {
        return new RadosTargetConfig(null, ceph.monHost(), "admin", ceph.adminKey(), POOL, keyPrefix);
    }

    private static String freshPrefix(String name) {
        return name + "-" + PREFIXES.incrementAndGet();
    }

    @Override
    protected ObjectTarget newTarget() {
        return RadosObjectTarget.connect(config(freshPrefix("contract")));
    }

    @Override
    protected Set<String> secrets() {
        return Set.of(ceph.adminKey());
    }

    @Test
    void describeNamesPoolPrefixAndMonitors() {
        assertThat(target.describe()).matches("rados://" + POOL + "/contract-\\d+/ \\(\\Q" + ceph.monHost() + "\\E\\)");
    }

    @Test
    void objectsLandUnderTheKeyPrefixAndListStripsIt() {
        String prefix = freshPrefix("prefixed");
        try (RadosObjectTarget prefixed = RadosObjectTarget.connect(config("backups/" + prefix));
                RadosObjectTarget wholePool = RadosObjectTarget.connect(config(""))) {
            prefixed.putIfAbsent("chunks/01", "x".getBytes(UTF_8));

            assertThat(wholePool.list("backups/" + prefix)).containsExactly("backups/" + prefix + "/chunks/01");
            assertThat(prefixed.list("")).containsExactly("chunks/01");
        }
    }

    @Test
    void anObjectAboveTheCapIsRefusedAsPermanentAndNothingIsStored() {
        int cap = 1 << 20;
        try (RadosObjectTarget capped =
                RadosObjectTarget.connect(config(freshPrefix("capped")).withMaxObjectBytes(cap))) {
            assertThatThrownBy(() -> capped.putIfAbsent("chunks/big", bytes(cap + 1, 7)))
                    .isInstanceOf(PermanentException.class)
                    .hasMessageContaining("chunks/big")
                    .hasMessageContaining((cap + 1) + " bytes")
                    .hasMessageContaining("maxObjectBytes")
                    .hasMessageContaining("osd_max_object_size");
            assertThat(capped.exists("chunks/big")).isFalse();

            assertThat(capped.putIfAbsent("chunks/at-cap", bytes(cap, 8))).isTrue();
            assertThat(capped.get("chunks/at-cap"))
                    .hasValueSatisfying(read -> assertThat(read).hasSize(cap));
        }
    }

    @Test
    void theCapCannotBeConfiguredAboveWhatRadosAccepts() {
        assertThat(config("x").maxObjectBytes()).isEqualTo(RadosTargetConfig.DEFAULT_MAX_OBJECT_BYTES);
        assertThatThrownBy(() -> config("x").withMaxObjectBytes(128 << 20))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("osd_max_write_size");
    }

    @Test
    void aWrongKeyIsPermanentNamesTheClientAndPoolAndHidesTheKey() {
        String wrongKey = randomCephxKey();
        RadosTargetConfig wrong = config(freshPrefix("wrong-key")).withKey(wrongKey);

        assertThatThrownBy(() -> RadosObjectTarget.connect(wrong))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("client.admin")
                .hasMessageContaining("rados://" + POOL + "/")
                .hasMessageContaining(ceph.monHost())
                .hasMessageContaining("EACCES")
                .hasMessageContaining("keyEnv/keyFile")
                .satisfies(e -> {
                    for (Throwable t = e; t != null; t = t.getCause()) {
                        assertThat(t.getMessage()).doesNotContain(wrongKey).doesNotContain(ceph.adminKey());
                    }
                });
        assertThat(wrong.toString()).doesNotContain(wrongKey).contains("key=***");
    }

    @Test
    void aKeyThatIsNotACephxKeyIsRefusedBeforeLibradosCanPrintIt() {
        // librados logs a key it cannot decode to stderr ("auth: failed to decode key '...'"), so the
        // format is checked before the key gets there
        for (String garbage : List.of("not a key, but a secret all the same", "c2VjcmV0LXNlY3JldC1zZWNyZXQ=")) {
            assertThatThrownBy(() -> config("x").withKey(garbage))
                    .isInstanceOf(PermanentException.class)
                    .hasMessageContaining("client.admin")
                    .hasMessageContaining("not a cephx key")
                    .hasMessageNotContaining(garbage)
                    .hasNoCause();
        }
    }

    @Test
    void aMissingPoolIsPermanentAndSaysHowToCreateIt() {
        RadosTargetConfig config =
                new RadosTargetConfig(null, ceph.monHost(), "client.admin", ceph.adminKey(), "no-such-pool", "");

        assertThatThrownBy(() -> RadosObjectTarget.connect(config))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("'no-such-pool' does not exist")
                .hasMessageContaining("ceph osd pool create no-such-pool");
    }

    @Test
    void monitorsThatDoNotAnswerAreRetriable() throws IOException {
        int silentPort;
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            silentPort = socket.getLocalPort();
        }
        RadosTargetConfig config = new RadosTargetConfig(
                null, "v2:127.0.0.1:" + silentPort, "admin", ceph.adminKey(), POOL, "", 0, Duration.ofSeconds(1));

        assertThatThrownBy(() -> RadosObjectTarget.connect(config))
                .isInstanceOf(RetriableException.class)
                .hasMessageContaining("127.0.0.1:" + silentPort)
                .hasMessageNotContaining(ceph.adminKey());
    }

    @Test
    void aCephConfWithAKeyringIsEnoughToConnect() {
        RadosTargetConfig config =
                new RadosTargetConfig(ceph.confFile(), null, "client.admin", null, POOL, freshPrefix("conf"));
        try (RadosObjectTarget fromConf = RadosObjectTarget.connect(config)) {
            assertThat(fromConf.putIfAbsent("k", new byte[] {42})).isTrue();

            assertThat(fromConf.get("k"))
                    .hasValueSatisfying(read -> assertThat(read).containsExactly(42));
            assertThat(fromConf.describe()).contains(ceph.monHost().replace("v2:", ""));
        }
    }

    @Test
    void nonAsciiKeysAreRejectedAsPermanent() {
        assertThatThrownBy(() -> target.putIfAbsent("chunks/caf\u00e9", new byte[1]))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("printable ASCII");
        assertThat(target.list("")).isEmpty();
    }

    @Test
    void aClosedTargetRefusesCalls() {
        RadosObjectTarget closing = RadosObjectTarget.connect(config(freshPrefix("closed")));
        closing.close();
        closing.close();

        assertThatThrownBy(() -> closing.exists("k"))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("closed");
    }

    /** A well-formed cephx secret (type 1, a creation time, 16 random bytes) that the cluster never issued. */
    private static String randomCephxKey() {
        byte[] secret = new byte[16];
        ThreadLocalRandom.current().nextBytes(secret);
        ByteBuffer key = ByteBuffer.allocate(28).order(ByteOrder.LITTLE_ENDIAN);
        key.putShort((short) 1)
                .putInt(1_700_000_000)
                .putInt(0)
                .putShort((short) 16)
                .put(secret);
        return Base64.getEncoder().encodeToString(key.array());
    }
}
