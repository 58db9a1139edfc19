package io.tidemark.workers.mirror;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

class MirrorFeaturesTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    private static JsonNode schema(String mirrorMembers, String modes, String nbdMembers) throws Exception {
        return JSON.readTree(("[{'name':'blockdev-mirror','meta-type':'command','arg-type':'1'},"
                        + "{'name':'1','meta-type':'object','members':[" + mirrorMembers + "]},"
                        + "{'name':'2','meta-type':'enum','values':[" + modes + "]},"
                        + "{'name':'3','meta-type':'object','members':[" + nbdMembers + "]}]")
                .replace('\'', '"'));
    }

    private static final String NBD = "{'name':'server'},{'name':'export'},{'name':'reconnect-delay'}";
    private static final String MIRROR = "{'name':'device'},{'name':'copy-mode','type':'2'},{'name':'on-target-error'}";

    @Test
    void qemuWithEverythingLacksNothing() throws Exception {
        assertThat(MirrorFeatures.missing(schema(MIRROR, "'background','write-blocking'", NBD)))
                .isEmpty();
    }

    @Test
    void aMirrorWithoutActiveModeIsNamed() throws Exception {
        assertThat(MirrorFeatures.missing(schema("{'name':'device'},{'name':'on-target-error'}", "", NBD)))
                .containsExactly("blockdev-mirror argument copy-mode (active mirroring, QEMU >= 3.0)");
        assertThat(MirrorFeatures.missing(schema(MIRROR, "'background'", NBD)))
                .containsExactly("blockdev-mirror copy-mode value write-blocking");
    }

    @Test
    void anNbdClientThatCannotReconnectIsNamed() throws Exception {
        assertThat(MirrorFeatures.missing(schema(MIRROR, "'write-blocking'", "{'name':'server'},{'name':'export'}")))
                .containsExactly("nbd blockdev driver option reconnect-delay (QEMU >= 4.2)");
    }

    @Test
    void qemuWithoutBlockdevMirrorIsNamed() throws Exception {
        JsonNode s = JSON.readTree("[]");
        assertThat(MirrorFeatures.missing(s))
                .containsExactly(
                        "QMP command blockdev-mirror", "nbd blockdev driver option reconnect-delay (QEMU >= 4.2)");
    }

    @Test
    void nbdWithoutTlsOptionsIsNamedOnlyForWhatTheTargetUses() throws Exception {
        String tls = NBD + ",{'name':'tls-creds'},{'name':'tls-hostname'}";
        assertThat(MirrorFeatures.missingTls(schema(MIRROR, "'write-blocking'", tls), true))
                .isEmpty();
        String noHostname = NBD + ",{'name':'tls-creds'}";
        assertThat(MirrorFeatures.missingTls(schema(MIRROR, "'write-blocking'", noHostname), false))
                .isEmpty();
        assertThat(MirrorFeatures.missingTls(schema(MIRROR, "'write-blocking'", noHostname), true))
                .containsExactly("nbd blockdev driver option tls-hostname (QEMU >= 7.0; or leave dr.tls.hostname out)");
        assertThat(MirrorFeatures.missingTls(schema(MIRROR, "'write-blocking'", NBD), false))
                .containsExactly("nbd blockdev driver option tls-creds (NBD over TLS)");
    }
}
