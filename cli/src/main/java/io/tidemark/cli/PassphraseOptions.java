package io.tidemark.cli;

import io.tidemark.engine.EngineConfig;
import io.tidemark.repository.PassphraseSource;
import java.nio.file.Path;
import java.util.Map;
import picocli.CommandLine.Option;

/**
 * {@code --passphrase-file}: where commands find the passphrase of encrypted repositories. Without
 * it, the engine config's {@code encryption.passphraseFile}, else the environment variable {@code
 * TIDEMARK_PASSPHRASE}. Never a command-line value: arguments show in {@code ps} and shell history.
 */
final class PassphraseOptions {

    @Option(
            names = "--passphrase-file",
            paramLabel = "FILE",
            description = "file holding the passphrase of encrypted repositories"
                    + " (default: encryption.passphraseFile of --config, else $TIDEMARK_PASSPHRASE)")
    Path passphraseFile;

    /** The environment the passphrase variable is read from; tests replace it. */
    static Map<String, String> env = System.getenv();

    /** The encryption settings of {@code c} with the flag applied. */
    EngineConfig.EncryptionConfig encryption(EngineConfig c) {
        return c.encryptionOrDefaults().withPassphraseFile(passphraseFile);
    }

    /** The passphrase source for repositories of {@code c}, read from the process environment. */
    PassphraseSource source(EngineConfig c) {
        return encryption(c).source(env);
    }
}
