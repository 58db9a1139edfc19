package io.tidemark.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;

import io.tidemark.targets.FileTargetSpec;
import io.tidemark.targets.RadosTargetSpec;
import io.tidemark.targets.S3TargetSpec;
import io.tidemark.targets.TargetSpec;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every {@code yaml} example of docs/configuration.md is an engine config that loads as it is written. */
class ConfigurationDocsTest {
    static final Path DOC = Path.of("../docs/configuration.md");

    private static final Pattern YAML_BLOCK = Pattern.compile("(?ms)^```yaml\\n(.*?)^```");

    @TempDir
    Path dir;

    @Test
    void everyYamlExampleLoads() throws Exception {
        List<String> blocks = new ArrayList<>();
        Matcher m = YAML_BLOCK.matcher(Files.readString(DOC));
        while (m.find()) {
            blocks.add(m.group(1));
        }
        assertThat(blocks).as("yaml examples in " + DOC).hasSizeGreaterThanOrEqualTo(7);
        List<TargetSpec> specs = new ArrayList<>();
        for (int i = 0; i < blocks.size(); i++) {
            Path file = Files.writeString(dir.resolve("example-" + (i + 1) + ".yaml"), blocks.get(i));
            assertThatCode(() -> specs.addAll(EngineConfig.load(file).targets().values()))
                    .as("example %d of %s:%n%s", i + 1, DOC, blocks.get(i))
                    .doesNotThrowAnyException();
        }
        assertThat(specs)
                .as("the examples show every type of target")
                .hasAtLeastOneElementOfType(S3TargetSpec.class)
                .hasAtLeastOneElementOfType(RadosTargetSpec.class)
                .hasAtLeastOneElementOfType(FileTargetSpec.class);
    }
}
