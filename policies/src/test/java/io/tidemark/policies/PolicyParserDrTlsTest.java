package io.tidemark.policies;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** {@code dr.tls} of a continuous policy (TLS on the NBD link, ADR 19), and its lint at file:line:column. */
class PolicyParserDrTlsTest {

    static final Path FILE = Path.of("policies/db.yaml");
    final PolicyParser parser = new PolicyParser(Clock.fixed(Instant.parse("2025-01-01T00:00:00Z"), ZoneOffset.UTC));

    private static String policy(String dr) {
        return """
                name: db
                vms: {names: [db-1]}
                schedule: {interval: 1h}
                rpo: 2s
                mode: continuous
                """
                + dr;
    }

    private Policy parse(String yaml) {
        return parser.parse(FILE, yaml.getBytes(UTF_8));
    }

    private List<String> problems(String yaml) {
        PolicyException e = assertThrows(PolicyException.class, () -> parse(yaml));
        return e.problems().stream().map(PolicyProblem::toString).toList();
    }

    @Test
    void tlsCarriesTheCredentialsDirectoryAndTheHostname() {
        Policy p = parse(
                policy(
                        """
                dr:
                  nbd: "nbd://dr-host:10809/{vm}-{disk}"
                  tls: {dir: /etc/pki/tidemark/dr, hostname: dr.example.net}
                """));
        assertThat(p.continuous().orElseThrow().tls())
                .hasValue(new Policy.DrTls("/etc/pki/tidemark/dr", Optional.of("dr.example.net")));

        Policy noHostname = parse(
                policy(
                        """
                dr: {nbd: "nbd://dr-host:10809/{vm}-{disk}", tls: {dir: /etc/pki/tidemark/dr}}
                """));
        assertThat(noHostname.continuous().orElseThrow().tls())
                .hasValue(new Policy.DrTls("/etc/pki/tidemark/dr", Optional.empty()));
        Policy plain =
                parse(policy("""
                dr: {nbd: "nbd://dr-host:10809/{vm}-{disk}"}
                """));
        assertThat(plain.continuous().orElseThrow().tls()).isEmpty();
    }

    @Test
    void tlsOnAUnixSocketIsAnErrorAtTheTlsKey() {
        assertThat(
                        problems(
                                policy(
                                        """
                dr:
                  nbd: "nbd+unix:///{vm}-{disk}?socket=/run/dr.sock"
                  tls: {dir: /etc/pki/tidemark/dr}
                """)))
                .singleElement()
                .asString()
                .startsWith("policies/db.yaml:8:3: dr.tls: tls protects a network link, but dr.nbd is a Unix socket");
    }

    @Test
    void aRelativeDirAnUnknownKeyAndAMissingDirAreErrorsAtTheirPlace() {
        assertThat(
                        problems(
                                policy(
                                        """
                dr:
                  nbd: "nbd://dr-host:10809/{vm}-{disk}"
                  tls: {dir: pki/dr, key: /etc/pki/dr/client-key.pem}
                """)))
                .containsExactly(
                        "policies/db.yaml:8:14: dr.tls.dir: expected an absolute directory on the VM's host such as"
                                + " /etc/pki/tidemark/dr, got \"pki/dr\"",
                        "policies/db.yaml:8:22: dr.tls.key: unknown key 'key'; expected one of: dir, hostname");
        assertThat(
                        problems(
                                policy(
                                        """
                dr:
                  nbd: "nbd://dr-host:10809/{vm}-{disk}"
                  tls: {hostname: dr-host}
                """)))
                .singleElement()
                .asString()
                .startsWith("policies/db.yaml:8:8: dr.tls.dir: missing required key 'dir'");
    }
}
