package org.peft4j.core.io.paddle;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

/**
 * The unpickler admits what {@code paddle.save} emits for a state dict and nothing else. The
 * pickles here are written opcode by opcode (as {@code pickletools.dis} prints them), so the test
 * does not depend on Python; the valid one is what numpy 1.x's {@code ndarray.__reduce__} emits
 * under protocol 4 for a {@code float32 [2, 3]} array.
 */
class PickleStateReaderTest {

    @TempDir Path dir;

    /** {@code PROTO 4; GLOBAL module name; MARK; BINUNICODE arg; TUPLE; REDUCE; STOP}. */
    private static byte[] call(String module, String name, String arg) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(new byte[] {(byte) 0x80, 4, 'c'});
        out.writeBytes((module + "\n" + name + "\n").getBytes(StandardCharsets.US_ASCII));
        out.write('(');
        unicode(out, arg);
        out.writeBytes(new byte[] {'t', 'R', '.'});
        return out.toByteArray();
    }

    private static void unicode(ByteArrayOutputStream out, String text) {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        out.write('X');
        ByteBuffer length = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
        out.writeBytes(length.putInt(bytes.length).array());
        out.writeBytes(bytes);
    }

    private static void stackGlobal(ByteArrayOutputStream out, String module, String name) {
        unicode(out, module);
        unicode(out, name);
        out.write(0x93);
    }

    /**
     * {@code {"w": ndarray float32 [2, 3] of 0..5, "StructuredToParameterName@@": {"w": "p"}}}, as
     * {@code pickle.Pickler(f, 4)} writes it (without FRAME and MEMOIZE, which change nothing).
     */
    private static byte[] stateDict() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(new byte[] {(byte) 0x80, 4, '}', '('});
        unicode(out, "w");
        stackGlobal(out, "numpy.core.multiarray", "_reconstruct");
        stackGlobal(out, "numpy", "ndarray");
        out.writeBytes(new byte[] {'K', 0, (byte) 0x85, 'C', 1, 'b', (byte) 0x87, 'R'});
        // BUILD state: (1, (2, 3), dtype('f4', False, True) + (3, '<', ...), False, bytes)
        out.writeBytes(new byte[] {'(', 'K', 1, 'K', 2, 'K', 3, (byte) 0x86});
        stackGlobal(out, "numpy", "dtype");
        out.write('(');
        unicode(out, "f4");
        out.writeBytes(new byte[] {(byte) 0x89, (byte) 0x88, 't', 'R', '('});
        out.writeBytes(new byte[] {'K', 3});
        unicode(out, "<");
        out.writeBytes(new byte[] {'N', 'N', 'N', 'J', -1, -1, -1, -1, 'J', -1, -1, -1, -1});
        out.writeBytes(new byte[] {'K', 0, 't', 'b', (byte) 0x89, 'C', 24});
        ByteBuffer data = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < 6; i++) {
            data.putFloat(i);
        }
        out.writeBytes(data.array());
        out.writeBytes(new byte[] {'t', 'b'});
        unicode(out, PickleStateReader.NAME_TABLE);
        out.writeBytes(new byte[] {'}'});
        unicode(out, "w");
        unicode(out, "p");
        out.writeBytes(new byte[] {'s', 'u', '.'});
        return out.toByteArray();
    }

    private Path write(String name, byte[] bytes) throws IOException {
        return Files.write(dir.resolve(name), bytes);
    }

    @Test
    void readsAStateDictAsPaddleSavesIt() throws IOException {
        Map<String, NumpyArray> state = PickleStateReader.read(write("ok.pdparams", stateDict()));
        assertEquals(1, state.size(), state.toString());
        NumpyArray w = state.get("w");
        assertEquals("f4", w.getDtype());
        assertEquals(new ai.djl.ndarray.types.Shape(2, 3), w.getShape());
    }

    @Test
    void aForbiddenGlobalIsRefusedNamingItAndTheFileWithoutRunningIt() throws IOException {
        String[][] globals = {
            {"os", "system", "touch PWNED"},
            {"builtins", "eval", "open('PWNED', 'w')"},
            {"posix", "system", "touch PWNED"},
            {"__main__", "Payload", "x"},
        };
        for (String[] g : globals) {
            Path file = write(g[0] + "_" + g[1] + ".pdparams", call(g[0], g[1], g[2]));
            PickleFormatException e =
                    assertThrows(PickleFormatException.class, () -> PickleStateReader.read(file));
            assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
            assertTrue(e.getMessage().contains(g[0] + "." + g[1]), e.getMessage());
            assertTrue(e.getMessage().contains("neither imported nor run"), e.getMessage());
        }
        assertFalse(Files.exists(Path.of("PWNED")));
        assertFalse(Files.exists(dir.resolve("PWNED")));
    }

    @Test
    void aClassInstanceIsRefusedEvenWithoutAGlobalOfItsOwn() throws IOException {
        // {"w": <NEWOBJ of an allowed global>}: instances are never built, whatever their class
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(new byte[] {(byte) 0x80, 4, '}'});
        unicode(out, "w");
        stackGlobal(out, "collections", "OrderedDict");
        out.writeBytes(new byte[] {')', (byte) 0x81, 's', '.'});
        Path file = write("newobj.pdparams", out.toByteArray());
        PickleFormatException e =
                assertThrows(PickleFormatException.class, () -> PickleStateReader.read(file));
        assertTrue(e.getMessage().contains("class instance"), e.getMessage());
    }

    @Test
    void aTruncatedFileFailsNamingIt() throws IOException {
        byte[] whole = stateDict();
        for (int length : new int[] {0, 1, 10, whole.length / 2, whole.length - 1}) {
            Path file = write("cut" + length + ".pdparams", Arrays.copyOf(whole, length));
            PickleFormatException e =
                    assertThrows(PickleFormatException.class, () -> PickleStateReader.read(file));
            assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
        }
    }

    @Test
    void somethingOtherThanAStateDictIsRefused() throws IOException {
        // a list, and a dict whose value is a string
        Path list = write("list.pdparams", new byte[] {(byte) 0x80, 4, ']', '.'});
        assertThrows(PickleFormatException.class, () -> PickleStateReader.read(list));
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(new byte[] {(byte) 0x80, 4, '}'});
        unicode(out, "w");
        unicode(out, "not an array");
        out.writeBytes(new byte[] {'s', '.'});
        Path text = write("text.pdparams", out.toByteArray());
        PickleFormatException e =
                assertThrows(PickleFormatException.class, () -> PickleStateReader.read(text));
        assertTrue(e.getMessage().contains("entry w"), e.getMessage());
    }
}
