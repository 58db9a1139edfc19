package io.tidemark.workers.mirror;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.core.PermanentException;
import io.tidemark.testkit.qemu.DrNbdSite;
import io.tidemark.testkit.qemu.QemuVm;
import io.tidemark.testkit.qemu.TestPki;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link ContinuousMirror} over NBD with TLS: a real QEMU 7.2 VM (TCG) mirrors to a real {@code
 * qemu-storage-daemon} whose NBD server on 127.0.0.1 requires TLS with x509 client certificates of
 * a throwaway CA made by {@code openssl} in the test ({@link TestPki}). The replica is read back by
 * {@code qemu-img} over TLS and compared with the fixture's model of the guest's disk.
 */
class ContinuousMirrorTlsIT {

    private static final int MIB = 1 << 20;
    private static final long SIZE = 32L * MIB;

    @TempDir
    Path dir;

    private TestPki pki;
    private QemuVm vm;
    private DrNbdSite dr;
    private final List<ContinuousMirror> mirrors = new CopyOnWriteArrayList<>();

    @BeforeEach
    void startSites() {
        pki = TestPki.create(dir.resolve("pki"));
        vm = QemuVm.start(dir, "vm1", SIZE);
        vm.write("sd0", 0, MIB, 0x11); // data written before protection starts
        dr = DrNbdSite.startTcpTls(dir, "dr1", SIZE, pki);
    }

    @AfterEach
    void stopAll() {
        mirrors.forEach(ContinuousMirror::close);
        if (vm != null) {
            vm.close();
        }
        if (dr != null) {
            dr.close();
        }
    }

    private ContinuousMirror mirror(DrNbdTarget target) {
        ContinuousMirror m = new ContinuousMirror(
                "vm1",
                vm.qmpSocket(),
                "sd0",
                target,
                ContinuousMirror.DEFAULT_RECONNECT_DELAY,
                Clock.systemUTC(),
                s -> {});
        mirrors.add(m);
        return m;
    }

    private DrNbdTarget overTls(Path clientDir) {
        return DrNbdTarget.parse(dr.uri()).withTls(new DrTls(clientDir, Optional.empty()));
    }

    private List<String> qemuObjects() {
        List<String> names = new ArrayList<>();
        for (JsonNode o : vm.qmp("qom-list", QemuVm.args().put("path", "/objects"))) {
            names.add(o.path("name").asText());
        }
        return names;
    }

    @Test
    void everyGuestWriteReachesTheReplicaOverTls() {
        ContinuousMirror m = mirror(overTls(pki.clientDir()));
        m.start();
        await().atMost(Duration.ofSeconds(60)).until(() -> m.poll().inSync());

        for (int i = 0; i < 6; i++) {
            vm.write("sd0", (2L + 4 * i) * MIB + 4096L * i, 64 * 1024, 0x20 + i);
        }
        // write-blocking: each write completed only once the DR site had it, through the TLS session
        assertThat(dr.sha256()).isEqualTo(vm.model("sd0").sha256());
        DrTls tls = new DrTls(pki.clientDir(), Optional.empty());
        assertThat(qemuObjects()).contains(ContinuousMirror.tlsCredsId(tls));
    }

    @Test
    void aDrLinkOutageOverTlsIsResynchronisedAfterANewHandshake() {
        ContinuousMirror m = mirror(overTls(pki.clientDir()));
        m.supervise(Duration.ofMillis(100));
        await().atMost(Duration.ofSeconds(60)).until(() -> m.state().inSync());

        dr.stop();
        vm.write("sd0", 8L * MIB, 64 * 1024, 0x51); // waits up to reconnect-delay, then tracked as dirty
        dr.restart(); // QEMU's nbd client reconnects, with a new TLS handshake
        await().atMost(Duration.ofSeconds(90)).until(() -> m.state().inSync());
        assertThat(dr.sha256()).isEqualTo(vm.model("sd0").sha256());
    }

    @Test
    void aClientWithoutTlsIsRefusedByTheServerAndTheMessageNamesTls() {
        ContinuousMirror m = mirror(DrNbdTarget.parse(dr.uri()));

        assertThatThrownBy(m::start)
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("vm1/sd0")
                .hasMessageContaining("requires TLS")
                .hasMessageContaining("tls: {dir:");
    }

    @Test
    void aCertificateOfAnotherCaIsRefusedNamingTheCaFile() {
        TestPki other = TestPki.create(dir.resolve("other-pki"));
        ContinuousMirror m = mirror(overTls(other.clientDir()));

        assertThatThrownBy(m::start)
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("TLS handshake failed")
                .hasMessageContaining(other.clientDir().resolve("ca-cert.pem").toString());
        assertThat(qemuObjects()).noneMatch(o -> o.startsWith("tm-dr-tls")); // nothing left behind
    }

    @Test
    void aHostnameTheServerCertificateLacksIsNamed() {
        ContinuousMirror m =
                mirror(DrNbdTarget.parse(dr.uri()).withTls(new DrTls(pki.clientDir(), Optional.of("dr.example.net"))));

        assertThatThrownBy(m::start)
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("does not match the hostname") // QEMU's reason
                .hasMessageContaining("TLS handshake failed")
                .hasMessageContaining("names dr.example.net");
    }

    @Test
    void aMissingKeyFileIsNamedBeforeQemuIsAsked() throws Exception {
        Path partial = dir.resolve("partial");
        Files.createDirectories(partial);
        Files.copy(pki.clientDir().resolve("ca-cert.pem"), partial.resolve("ca-cert.pem"));
        Files.copy(pki.clientDir().resolve("client-cert.pem"), partial.resolve("client-cert.pem"));
        ContinuousMirror m = mirror(overTls(partial));

        assertThatThrownBy(m::start)
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining(partial.resolve("client-key.pem").toString())
                .hasMessageNotContaining(partial.resolve("client-cert.pem").toString());
        assertThat(qemuObjects()).noneMatch(o -> o.startsWith("tm-dr-tls"));
    }

    @Test
    void aKeyThatIsNotPemIsRejectedByQemuWithTheDirectoryNamed() throws Exception {
        Path broken = dir.resolve("broken");
        Files.createDirectories(broken);
        for (String f : DrTls.FILES) {
            Files.copy(pki.clientDir().resolve(f), broken.resolve(f));
        }
        Files.writeString(broken.resolve("client-key.pem"), "not a key\n");
        ContinuousMirror m = mirror(overTls(broken));

        assertThatThrownBy(m::start)
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("QEMU rejected the TLS credentials in " + broken)
                .hasMessageContaining("the key belongs to the certificate");
        assertThat(qemuObjects()).noneMatch(o -> o.startsWith("tm-dr-tls"));
    }

    @Test
    void aRestartedSupervisorAdoptsTheTlsMirrorAndStopRemovesTheCredentials() {
        ContinuousMirror first = mirror(overTls(pki.clientDir()));
        first.start();
        await().atMost(Duration.ofSeconds(60)).until(() -> first.poll().inSync());
        first.close();

        ContinuousMirror second = mirror(overTls(pki.clientDir()));
        second.start(); // adopts the job, and the credentials object it finds (no "duplicate ID")
        assertThat(second.poll().phase()).isEqualTo(MirrorState.Phase.IN_SYNC);
        vm.write("sd0", 5L * MIB, 128 * 1024, 0x42);
        assertThat(dr.sha256()).isEqualTo(vm.model("sd0").sha256());
        String id = ContinuousMirror.tlsCredsId(new DrTls(pki.clientDir(), Optional.empty()));
        assertThat(qemuObjects()).containsOnlyOnce(id);

        second.stop();
        assertThat(qemuObjects()).doesNotContain(id);
    }
}
