package io.tidemark.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The {@code hypervisor:} section of the engine config. */
class EngineConfigHypervisorTest {

    @TempDir
    Path dir;

    private EngineConfig load(String yaml) throws Exception {
        return EngineConfig.load(Files.writeString(dir.resolve("engine.yaml"), yaml));
    }

    @Test
    void libvirtWithItsUriIsReadAndSurvivesTheWithMethods() throws Exception {
        EngineConfig c = load(
                """
                host: hv1
                hypervisor:
                  type: libvirt
                  uri: qemu:///system
                """);

        assertThat(c.hypervisor()).isEqualTo(EngineConfig.HypervisorConfig.libvirt("qemu:///system"));
        assertThat(c.hypervisor().isLibvirt()).isTrue();
        assertThat(c.toBuilder().host("hv2").metrics("").hooks(null).build().hypervisor())
                .isEqualTo(c.hypervisor());
    }

    @Test
    void qmpIsTheDefault() throws Exception {
        assertThat(load("host: hv1\n").hypervisor().isLibvirt()).isFalse();
        assertThat(EngineConfig.empty().hypervisor()).isEqualTo(EngineConfig.HypervisorConfig.qmp());
        assertThat(load("hypervisor:\n  type: qmp\n").hypervisor().isLibvirt()).isFalse();
    }

    @Test
    void anUnknownTypeOrLibvirtWithoutUriIsPermanentAndSaysWhatToDo() throws Exception {
        assertThatThrownBy(() -> load("hypervisor:\n  type: xen\n").hypervisor().isLibvirt())
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("'xen'")
                .hasMessageContaining("qmp");
        assertThatThrownBy(() ->
                        load("hypervisor:\n  type: libvirt\n").hypervisor().isLibvirt())
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("uri:");
        assertThatThrownBy(() -> load("hypervisor:\n  typ: libvirt\n")).hasMessageContaining("typ");
    }
}
