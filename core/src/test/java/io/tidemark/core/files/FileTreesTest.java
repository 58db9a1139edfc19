package io.tidemark.core.files;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FileTreesTest {

    @TempDir
    Path tmp;

    @Test
    void removesATreeAndAMissingRootIsNoError() throws Exception {
        Path root = tmp.resolve("root");
        Files.createDirectories(root.resolve("a/b/c"));
        Files.writeString(root.resolve("a/b/c/f"), "x");
        Files.writeString(root.resolve("g"), "y");

        FileTrees.delete(root);

        assertThat(root).doesNotExist();
        FileTrees.delete(root);
        FileTrees.delete(tmp.resolve("never-existed"));
    }

    @Test
    void linksInsideTheTreeAreRemovedNotFollowed() throws Exception {
        Path outside = tmp.resolve("outside");
        Files.createDirectories(outside.resolve("keep"));
        Files.writeString(outside.resolve("keep/file"), "precious");
        Path root = tmp.resolve("root");
        Files.createDirectories(root);
        Files.createSymbolicLink(root.resolve("dirlink"), outside);
        Files.createSymbolicLink(root.resolve("filelink"), outside.resolve("keep/file"));

        FileTrees.delete(root);

        assertThat(root).doesNotExist();
        assertThat(outside.resolve("keep/file")).hasContent("precious");
    }

    @Test
    void aLinkGivenAsRootIsRemovedItselfNotItsTarget() throws Exception {
        Path outside = tmp.resolve("outside");
        Files.createDirectories(outside);
        Files.writeString(outside.resolve("file"), "precious");
        Path link = Files.createSymbolicLink(tmp.resolve("link"), outside);

        FileTrees.delete(link);

        assertThat(Files.exists(link, java.nio.file.LinkOption.NOFOLLOW_LINKS)).isFalse();
        assertThat(outside.resolve("file")).hasContent("precious");
    }
}
