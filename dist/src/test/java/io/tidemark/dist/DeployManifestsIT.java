package io.tidemark.dist;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * The Kubernetes manifests and the compose file of deploy/ against their schemas
 * (deploy/validate/validate.mjs: kubernetes-models, its declarations for unknown fields, and the compose
 * specification's JSON schema), and the
 * validator itself against broken copies: a check that passes everything would pass here too.
 */
class DeployManifestsIT {

    static final Path DEPLOY = Path.of("..", "deploy").toAbsolutePath().normalize();
    static final Path VALIDATE = DEPLOY.resolve("validate/validate.mjs");

    @Test
    void kubernetesManifestsAndComposeFileAreValid() {
        assertThat(DEPLOY.resolve("validate/node_modules"))
                .as("the npm packages of deploy/validate are missing: run deploy/install-deps.sh")
                .isDirectory();
        Sh r = Sh.run("node", VALIDATE.toString());
        assertThat(r.rc()).as(r.out() + r.err()).isZero();
        System.out.println(r.out().trim());
        assertThat(r.out())
                .contains("ConfigMap", "DaemonSet", "Deployment", "Namespace", "PersistentVolumeClaim", "compose");
    }

    @Test
    void theValidatorRefusesAWrongTypeAMissingRequiredFieldAndUnknownFields() throws Exception {
        Path copy = Files.createTempDirectory("tidemark-deploy-copy");
        try {
            Sh.run(
                            "cp",
                            "-r",
                            DEPLOY.resolve("k8s").toString(),
                            DEPLOY.resolve("compose").toString(),
                            copy.toString())
                    .ok();
            Files.createDirectories(copy.resolve("validate"));
            Files.copy(VALIDATE, copy.resolve("validate/validate.mjs"));
            Files.createSymbolicLink(copy.resolve("validate/node_modules"), DEPLOY.resolve("validate/node_modules"));
            Sh good = Sh.run("node", copy.resolve("validate/validate.mjs").toString());
            assertThat(good.rc()).as(good.err()).isZero();

            replace(copy.resolve("k8s/scheduler.yaml"), "  replicas: 1\n", "  replicas: one\n");
            replace(copy.resolve("k8s/worker.yaml"), "        - name: tidemark\n", "        - nam: tidemark\n");
            replace(
                    copy.resolve("compose/docker-compose.yml"),
                    "    image: postgres:15\n",
                    "    imagee: postgres:15\n");
            replace(
                    copy.resolve("k8s/replicator.yaml"),
                    "            allowPrivilegeEscalation: false\n",
                    "            allowPrivilegeEscalaton: false\n");
            Sh bad = Sh.run("node", copy.resolve("validate/validate.mjs").toString());
            assertThat(bad.rc()).isEqualTo(1);
            assertThat(bad.err())
                    .contains(
                            "scheduler.yaml: document 1 (Deployment tidemark-scheduler): data/spec/replicas must be integer")
                    .contains("worker.yaml: document 1 (DaemonSet tidemark-worker)")
                    .contains("containers/0 must have required property name")
                    .contains("docker-compose.yml: /services/postgres: must NOT have additional properties")
                    .contains("imagee")
                    .contains(
                            "replicator.yaml: document 1 (Deployment tidemark-replicator):"
                                    + " /spec/template/spec/containers/0/securityContext/allowPrivilegeEscalaton: unknown field");
        } finally {
            Sh.run("rm", "-rf", copy.toString());
        }
    }

    private static void replace(Path file, String from, String to) throws Exception {
        String text = Files.readString(file);
        assertThat(text).contains(from);
        Files.writeString(file, text.replaceFirst(java.util.regex.Pattern.quote(from), to));
    }
}
