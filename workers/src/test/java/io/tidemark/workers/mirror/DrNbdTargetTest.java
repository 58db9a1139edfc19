package io.tidemark.workers.mirror;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import java.nio.file.Path;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class DrNbdTargetTest {

    @Test
    void parsesUnixAndTcpUris() {
        assertThat(DrNbdTarget.parse("nbd+unix:///vm1?socket=/run/dr/vm1.sock"))
                .isEqualTo(DrNbdTarget.unix(Path.of("/run/dr/vm1.sock"), "vm1"));
        DrNbdTarget tcp = DrNbdTarget.parse("nbd://dr.example:10810/vm1-sd0");
        assertThat(tcp.host()).contains("dr.example");
        assertThat(tcp.port()).isEqualTo(10810);
        assertThat(tcp.export()).isEqualTo("vm1-sd0");
        assertThat(DrNbdTarget.parse("nbd://dr.example/x").port()).isEqualTo(10809);
        assertThat(tcp.toString()).isEqualTo("nbd://dr.example:10810/vm1-sd0");
        assertThat(DrNbdTarget.parse(tcp.toString())).isEqualTo(tcp);
        assertThat(tcp.socket()).isEqualTo(Optional.empty());
    }

    @Test
    void badUrisSayWhatIsMissing() {
        assertThatThrownBy(() -> DrNbdTarget.parse("nbd+unix:///vm1"))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("names no socket");
        assertThatThrownBy(() -> DrNbdTarget.parse("nbd://dr.example:10809/")).hasMessageContaining("names no export");
        assertThatThrownBy(() -> DrNbdTarget.parse("s3://bucket/x")).hasMessageContaining("is not an NBD URI");
    }

    @Test
    void tlsIsCarriedAndTheUriStaysTheSame(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        DrNbdTarget tcp = DrNbdTarget.parse("nbd://dr.example:10810/vm1-sd0");
        DrTls tls = new DrTls(dir, Optional.of("dr.example"));
        DrNbdTarget secured = tcp.withTls(tls);
        assertThat(secured.tls()).contains(tls);
        assertThat(secured.toString()).isEqualTo(tcp.toString());
        assertThat(secured).isNotEqualTo(tcp);
        assertThat(tcp.tls()).isEmpty();
        assertThat(tls.missingFiles()).containsExactlyElementsOf(DrTls.FILES);
        java.nio.file.Files.writeString(dir.resolve("ca-cert.pem"), "x");
        assertThat(tls.missingFiles()).containsExactly("client-cert.pem", "client-key.pem");
        assertThatThrownBy(() -> new DrTls(Path.of("pki/dr"), Optional.empty()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("absolute");
    }
}
