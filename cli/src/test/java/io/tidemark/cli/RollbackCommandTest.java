package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.testkit.StdStreams;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** What `tidemark rollback` refuses before it asks any engine (nothing listens on the URL below). */
class RollbackCommandTest {

    @RegisterExtension
    final StdStreams std = new StdStreams();

    @org.junit.jupiter.api.io.TempDir
    java.nio.file.Path dir;

    private int rollback(String... args) {
        String[] all = new String[args.length + 3];
        all[0] = "rollback";
        all[1] = "--url";
        all[2] = "http://127.0.0.1:9";
        System.arraycopy(args, 0, all, 3, args.length);
        return Main.execute(all);
    }

    @Test
    void aTagThatIsNotPreDeployIsInvalid() {
        assertThat(rollback("--app", "shop", "--to", "v1.2")).isEqualTo(1);
        assertThat(std.err()).contains("--to: tag 'v1.2' is not of the form pre-deploy:SHA");
    }

    @Test
    void theAppComesFromTheFlagOrTheTagAndMustAgree() {
        assertThat(rollback("--to", "pre-deploy:4f2a9c1")).isEqualTo(1);
        assertThat(std.err()).contains("name the app: --app APP, or --to pre-deploy:APP@SHA");
        std.reset();
        assertThat(rollback("--app", "shop", "--to", "pre-deploy:cart@4f2a9c1")).isEqualTo(1);
        assertThat(std.err()).contains("--app shop and --to pre-deploy:cart@4f2a9c1 name different apps");
    }

    @Test
    void anEmptySecretIsRefusedAndAnUnreachableEngineExitsThree() throws Exception {
        assertThat(rollback("--to", "pre-deploy:shop@4f2a9c1", "--secret-file", "/dev/null"))
                .isEqualTo(1); // an empty secret is refused before any call
        std.reset();
        java.nio.file.Path secret =
                java.nio.file.Files.writeString(dir.resolve("hook.secret"), "0123456789abcdef0123456789abcdef\n");
        // nothing listens on port 9 of the loopback address
        assertThat(rollback("--to", "pre-deploy:shop@4f2a9c1", "--secret-file", secret.toString()))
                .isEqualTo(3);
        assertThat(std.err()).contains("cannot reach the engine").contains("may not have been rolled back");
    }
}
