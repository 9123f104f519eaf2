package org.peft4j.core.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

class JsonConfigReaderTest {

    @TempDir Path dir;

    @Test
    void bytesThatAreNotUtf8AreRefusedWithTheirOffsetAndLine() throws IOException {
        Path file = dir.resolve("config.json");
        byte[] head = "{\n  \"name\": \"caf".getBytes(StandardCharsets.US_ASCII);
        byte[] tail = "\"\n}\n".getBytes(StandardCharsets.US_ASCII);
        byte[] bytes = new byte[head.length + 1 + tail.length];
        System.arraycopy(head, 0, bytes, 0, head.length);
        bytes[head.length] = (byte) 0xE9; // Latin-1 'é'
        System.arraycopy(tail, 0, bytes, head.length + 1, tail.length);
        Files.write(file, bytes);
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> JsonConfigReader.read(file));
        assertEquals(
                file
                        + ": not UTF-8: byte offset "
                        + head.length
                        + " (line 2) holds 0xE9, which is not a UTF-8 character; save the file"
                        + " as UTF-8 (JSON config files must be UTF-8)",
                e.getMessage());
    }

    @Test
    void utf8IsReadAsIs() throws IOException {
        Path file = dir.resolve("config.json");
        Files.writeString(file, "{\"name\": \"café 模型\"}", StandardCharsets.UTF_8);
        assertEquals("café 模型", JsonConfigReader.read(file).optString("name"));
    }

    @Test
    void aTruncatedMultiByteCharacterIsRefusedToo() throws IOException {
        Path file = dir.resolve("config.json");
        byte[] good = "{\"a\": \"é\"}".getBytes(StandardCharsets.UTF_8);
        byte[] cut = new byte[good.length - 3]; // ends inside the two bytes of é
        System.arraycopy(good, 0, cut, 0, cut.length);
        Files.write(file, cut);
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> JsonConfigReader.read(file));
        assertTrue(e.getMessage().contains("byte offset 7"), e.getMessage());
    }
}
