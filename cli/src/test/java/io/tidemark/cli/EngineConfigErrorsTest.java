package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.InvalidInputException;
import io.tidemark.engine.EngineConfig;
import io.tidemark.testkit.StdStreams;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * A wrong engine config is reported as policies are: file:line:column, the key path, what is
 * allowed there, no Java class name; the command line exits 1 (invalid input).
 */
class EngineConfigErrorsTest {

    @TempDir
    Path dir;

    @RegisterExtension
    final StdStreams std = new StdStreams();

    private Path config(String yaml) throws Exception {
        return Files.writeString(dir.resolve("tidemark.yaml"), yaml);
    }

    @Test
    void anUnknownKeyOfATargetNamesItsPlaceAndTheKeyMeantAndExitsOne() throws Exception {
        Path c = config(
                """
                data: /tmp/x
                targets:
                  offsite:
                    type: s3
                    bucket: b
                    secretKeyFlie: /etc/tidemark/s3.secret
                """);
        assertThat(Main.execute("verify", "--config", c.toString(), "--target", "local"))
                .isEqualTo(1);
        assertThat(std.err())
                .contains(c + ":6:5: targets.offsite.secretKeyFlie: unknown key 'secretKeyFlie'; did you mean"
                        + " 'secretKeyFile'?")
                .doesNotContain("io.tidemark")
                .doesNotContain("Jackson")
                .doesNotContain("class");
    }

    @Test
    void anUnknownTopLevelKeyListsTheAllowedOnes() throws Exception {
        Path c = config("host: hv1\nflavour: blue\n");
        assertThatThrownBy(() -> EngineConfig.load(c))
                .isInstanceOf(InvalidInputException.class)
                .hasMessageStartingWith(c + ":2:1: flavour: unknown key 'flavour'; expected one of: ")
                .hasMessageContaining("targets")
                .hasMessageContaining("maxConcurrentJobs");
    }

    @Test
    void aValueOfTheWrongKindAndAnOutOfRangeSettingSayWhatIsAllowed() throws Exception {
        Path c = config("maxConcurrentJobs: many\n");
        assertThatThrownBy(() -> EngineConfig.load(c))
                .isInstanceOf(InvalidInputException.class)
                .hasMessageStartingWith(c + ":1:20: maxConcurrentJobs: expected a whole number, got \"many\"");
        Path range = config("host: hv1\nmaxConcurrentJobs: 99\n");
        assertThatThrownBy(() -> EngineConfig.load(range))
                .isInstanceOf(InvalidInputException.class)
                .hasMessageStartingWith(range + ":")
                .hasMessageContaining("maxConcurrentJobs must be from 1 to");
        Path list = config("targets: [a, b]\n");
        assertThatThrownBy(() -> EngineConfig.load(list))
                .isInstanceOf(InvalidInputException.class)
                .hasMessageStartingWith(list + ":1:")
                .hasMessageContaining("targets: expected a mapping of settings");
    }

    @Test
    void targetSettingsAreCheckedWhenTheConfigIsReadEachAtItsPlace() throws Exception {
        Path c = config(
                """
                targets:
                  nas:
                    type: file
                  offsite:
                    type: s4
                  slow:
                    type: s3
                    bucket: b
                    retryDeadline: 5 minutes
                    bandwidthLimit: fast
                    objectLockDays: 30
                """);
        assertThat(Main.execute("gc", "--config", c.toString(), "--target", "local"))
                .isEqualTo(1);
        assertThat(std.err())
                .contains(c + ":2:3: targets.nas: type file needs 'path'")
                .contains(c + ":5:11: targets.offsite.type: expected one of: s3, rados, file; got \"s4\"")
                .contains(c + ":9:20: targets.slow.retryDeadline: expected a duration such as 30s")
                .contains(c + ":10:21: targets.slow.bandwidthLimit: expected a positive rate such as 20MiB/s")
                .contains(c + ":11:21: targets.slow.objectLockDays: set both objectLockMode");
    }

    @Test
    void aKeyOfAnotherTypeOfTargetIsNamedAsSuch() throws Exception {
        Path c = config(
                """
                targets:
                  offsite:
                    type: s3
                    bucket: b
                    pool: tidemark
                  ceph:
                    type: rados
                    monHost: v2:10.0.0.1:3300
                    pool: tidemark
                    keyFile: /etc/tidemark/ceph.key
                    bucket: b
                """);
        assertThatThrownBy(() -> EngineConfig.load(c))
                .isInstanceOf(InvalidInputException.class)
                .hasMessageContaining(
                        c + ":5:5: targets.offsite.pool: 'pool' is a setting of type rados, not of type s3")
                .hasMessageContaining(
                        c + ":11:5: targets.ceph.bucket: 'bucket' is a setting of type s3, not of type rados");
    }

    @Test
    void theRequiredSettingsOfEachTypeAreNamedAtTheTarget() throws Exception {
        Path c = config(
                """
                targets:
                  ceph:
                    type: rados
                    monHost: v2:10.0.0.1:3300
                  offsite:
                    region: eu-west-1
                """);
        assertThat(Main.execute("verify", "--config", c.toString(), "--target", "local"))
                .isEqualTo(1);
        assertThat(std.err())
                .contains(c + ":2:3: targets.ceph: type rados needs 'pool'")
                .contains(c + ":2:3: targets.ceph: type rados needs the cephx key: keyEnv or keyFile")
                .contains(c + ":5:3: targets.offsite: type s3 needs 'bucket'");
    }

    @Test
    void settingsThatContradictEachOtherAreFoundWhenTheFileIsReadEachAtItsKey() throws Exception {
        Path c = config(
                """
                targets:
                  oss:
                    type: s3
                    endpoint: ftp://oss.example.com
                    bucket: b
                    prefix: /abs
                    ossCompatible: true
                    pathStyle: true
                    objectLockMode: COMPLIANCE
                    objectLockDays: 30
                """);
        assertThatThrownBy(() -> EngineConfig.load(c))
                .isInstanceOf(InvalidInputException.class)
                .hasMessageContaining(
                        c + ":4:15: targets.oss.endpoint: endpoint 'ftp://oss.example.com' is not an" + " http(s) URL")
                .hasMessageContaining(c + ":6:13: targets.oss.prefix: key prefix '/abs' must not start with '/'")
                .hasMessageContaining(c + ":8:16: targets.oss.pathStyle: Alibaba OSS accepts only virtual-hosted")
                .hasMessageContaining(c + ":9:21: targets.oss.objectLockMode: S3 Object Lock is not available"
                        + " through Alibaba OSS");
    }

    @Test
    void aKeyGivenTwiceIsAnErrorNotASilentOverride() throws Exception {
        Path c = config("host: hv1\ndata: /srv/a\ndata: /srv/b\n");
        assertThatThrownBy(() -> EngineConfig.load(c))
                .isInstanceOf(InvalidInputException.class)
                .hasMessageStartingWith(c + ":3:")
                .hasMessageContaining("duplicate key 'data'")
                .hasMessageNotContaining("io.tidemark");
    }

    @Test
    void anUnknownHypervisorTypeIsFoundWhenTheConfigIsRead() throws Exception {
        Path c = config("host: hv1\nhypervisor:\n  type: xen\n");
        assertThatThrownBy(() -> EngineConfig.load(c))
                .isInstanceOf(InvalidInputException.class)
                .hasMessageStartingWith(c + ":3:9: hypervisor.type: ");
    }

    @Test
    void brokenYamlNamesTheLineAndExitsOne() throws Exception {
        Path c = config("host: hv1\ntargets:\n  offsite: {type: s3\n");
        assertThat(Main.execute("gc", "--config", c.toString())).isEqualTo(1);
        assertThat(std.err()).contains(c + ":").contains("invalid YAML");
    }
}
