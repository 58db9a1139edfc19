package io.tidemark.dist;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.engine.EngineConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The archive {@code mvn package} writes (target/tidemark-VERSION.tar.gz), unpacked as a user would:
 * its launcher runs the CLI from lib/, which holds no test library; its example config and policies
 * are valid; and the JRE module list of deploy/container/build-image.sh is enough to run the CLI (the
 * image itself is built by that script, about a minute: not in this suite).
 */
class DistributionArchiveIT {

    static final Path TARGET = Path.of("target");

    @TempDir
    Path dir;

    @Test
    void launcherRunsTheCliFromLibWithoutTestLibrariesAndTheExamplesAreValid() throws Exception {
        Path home = unpack();
        for (String expected : List.of(
                "bin/tidemark",
                "etc/tidemark.yaml",
                "etc/policies/README",
                "examples/policies/web-tier.yaml",
                "share/bash-completion/completions/tidemark",
                "doc/docs/deploy.md")) {
            assertThat(home.resolve(expected)).exists();
        }
        assertThat(Files.isExecutable(home.resolve("bin/tidemark"))).isTrue();
        List<String> jars;
        try (Stream<Path> lib = Files.list(home.resolve("lib"))) {
            jars = lib.map(p -> p.getFileName().toString()).sorted().toList();
        }
        assertThat(jars).anyMatch(j -> j.startsWith("tidemark-cli-")).anyMatch(j -> j.startsWith("tidemark-engine-"));
        assertThat(jars)
                .as("lib/ is the CLI's runtime class path: no test library")
                .noneMatch(
                        j -> j.matches(
                                "(junit|assertj|awaitility|s3proxy|tidemark-testkit|tidemark-demo|mockito|opentest4j|jqwik).*"));

        Sh version = Sh.run(home.resolve("bin/tidemark").toString(), "--version");
        assertThat(version.ok().out()).startsWith("tidemark ");
        // through a symbolic link, as /usr/bin/tidemark calls it
        Path link = dir.resolve("tidemark-link");
        Files.createSymbolicLink(link, home.resolve("bin/tidemark"));
        Sh lint = Sh.run(
                link.toString(),
                "policy",
                "lint",
                home.resolve("examples/policies").toString());
        assertThat(lint.rc()).as(lint.out() + lint.err()).isZero();

        EngineConfig config = EngineConfig.load(home.resolve("etc/tidemark.yaml"));
        assertThat(config.data()).isEqualTo(Path.of("/var/lib/tidemark"));
        assertThat(config.metrics()).isEqualTo("127.0.0.1:9464");
    }

    @Test
    void theComposeAndKubernetesConfigsAndPoliciesAreValid() throws Exception {
        Path home = unpack();
        Path deploy = Path.of("..", "deploy");
        EngineConfig compose = EngineConfig.load(deploy.resolve("compose/tidemark.yaml"));
        assertThat(compose.kafka().bootstrap()).isEqualTo("kafka:9092");
        Sh lint = Sh.run(
                home.resolve("bin/tidemark").toString(),
                "policy",
                "lint",
                deploy.resolve("compose/policies").toString());
        assertThat(lint.rc()).as(lint.out() + lint.err()).isZero();

        // the ConfigMaps' files, as Kubernetes mounts them
        Map<String, String> files = new java.util.LinkedHashMap<>();
        for (Object doc : new org.yaml.snakeyaml.Yaml().loadAll(Files.readString(deploy.resolve("k8s/config.yaml")))) {
            @SuppressWarnings("unchecked")
            Map<String, Object> map = (Map<String, Object>) doc;
            @SuppressWarnings("unchecked")
            Map<String, String> data = (Map<String, String>) map.get("data");
            files.putAll(data);
        }
        Path config = dir.resolve("k8s-tidemark.yaml");
        Files.writeString(config, files.remove("tidemark.yaml"));
        assertThat(EngineConfig.load(config).metrics()).isEqualTo("0.0.0.0:9464");
        Path policies = Files.createDirectories(dir.resolve("k8s-policies"));
        assertThat(files).isNotEmpty();
        for (Map.Entry<String, String> f : files.entrySet()) {
            Files.writeString(policies.resolve(f.getKey()), f.getValue());
        }
        Sh k8sLint = Sh.run(home.resolve("bin/tidemark").toString(), "policy", "lint", policies.toString());
        assertThat(k8sLint.rc()).as(k8sLint.out() + k8sLint.err()).isZero();
    }

    @Test
    void theContainerImagesJreModulesAreEnoughToRunTheCli() throws Exception {
        Path home = unpack();
        Path script = Path.of("..", "deploy", "container", "build-image.sh");
        String modules = Sh.run("bash", "-c", "eval \"$(grep '^modules=' " + script + ")\"; echo \"$modules\"")
                .ok()
                .out()
                .trim();
        assertThat(modules).startsWith("java.base,").contains("jdk.httpserver");
        Sh r = Sh.run(
                "java",
                "--limit-modules",
                modules,
                "-cp",
                home.resolve("lib") + "/*",
                "io.tidemark.cli.Main",
                "policy",
                "lint",
                home.resolve("examples/policies").toString());
        assertThat(r.rc()).as(r.out() + r.err()).isZero();
        for (String tool : List.of("buildah", "skopeo", "umoci", "jlink")) {
            assertThat(Sh.run("sh", "-c", "command -v " + tool).rc())
                    .as(tool + " builds and checks the image: run deploy/install-deps.sh")
                    .isZero();
        }
    }

    private Path unpack() throws Exception {
        Path archive;
        try (Stream<Path> files = Files.list(TARGET)) {
            archive = files.filter(p -> p.getFileName().toString().matches("tidemark-.*\\.tar\\.gz"))
                    .findFirst()
                    .orElseThrow(() -> new AssertionError("no tidemark-*.tar.gz in target: mvn package builds it"));
        }
        Sh.run("tar", "-C", dir.toString(), "-xzf", archive.toAbsolutePath().toString())
                .ok();
        try (Stream<Path> top = Files.list(dir)) {
            return top.filter(Files::isDirectory).findFirst().orElseThrow();
        }
    }
}
