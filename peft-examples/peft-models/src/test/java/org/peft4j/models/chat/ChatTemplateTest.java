package org.peft4j.models.chat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneId;
import java.util.List;

/** Where a template comes from, the special tokens it sees, and every error's message. */
class ChatTemplateTest {

    private static final String SIMPLE =
            "{% for m in messages %}{{ bos_token + m.role + ':' + m.content ~ eos_token }}"
                    + "{% endfor %}{% if add_generation_prompt %}A:{% endif %}";

    @TempDir Path dir;

    @Test
    void jinjaFileWinsOverTheConfig() throws IOException {
        write("tokenizer_config.json",
                "{\"chat_template\": \"config\", \"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}");
        write("chat_template.jinja", "file {{ bos_token }}{{ eos_token }}\n");
        ChatTemplate template = ChatTemplate.fromPretrained(dir);
        assertEquals(dir.resolve("chat_template.jinja"), template.getSource());
        // jinja2 drops the file's one trailing newline
        assertEquals("file <s></s>", template.render(List.of(ChatMessage.user("x")), false));
    }

    @Test
    void configStringAndAddedTokenObjects() throws IOException {
        write("tokenizer_config.json",
                "{\"chat_template\": " + json(SIMPLE) + ", \"bos_token\": {\"__type\": "
                        + "\"AddedToken\", \"content\": \"<s>\"}, \"eos_token\": null}");
        ChatTemplate template = ChatTemplate.fromPretrained(dir);
        assertEquals(dir.resolve("tokenizer_config.json"), template.getSource());
        // an eos_token of null is undefined in the template: ~ joins it as empty, as in jinja2
        assertEquals(
                "<s>user:hi<s>assistant:yo",
                template.render(List.of(ChatMessage.user("hi"), ChatMessage.assistant("yo")),
                        false));
        assertEquals("<s>user:hiA:", template.render(List.of(ChatMessage.user("hi")), true));
    }

    @Test
    void listFormUsesTheDefault() throws IOException {
        write("tokenizer_config.json",
                "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"T\"},"
                        + " {\"name\": \"default\", \"template\": \"D\"}]}");
        assertEquals("D", ChatTemplate.fromPretrained(dir).render(List.of(), false));
    }

    @Test
    void listFormWithoutDefaultSaysSo() throws IOException {
        write("tokenizer_config.json",
                "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"T\"}]}");
        String message = failure(() -> ChatTemplate.fromPretrained(dir));
        assertTrue(message.contains("tokenizer_config.json"), message);
        assertTrue(message.contains("[tool_use]") && message.contains("\"default\""), message);
    }

    @Test
    void noTemplateNamesTheDirectoryAndWhatToDo() throws IOException {
        write("tokenizer_config.json", "{\"bos_token\": \"<s>\"}");
        String message = failure(() -> ChatTemplate.fromPretrained(dir));
        assertTrue(message.startsWith(dir + " has no chat template"), message);
        assertTrue(message.contains("chat_template.jinja"), message);

        String missing = failure(() -> ChatTemplate.fromPretrained(dir.resolve("absent")));
        assertTrue(missing.contains("absent is not a directory"), missing);
    }

    @Test
    void malformedConfigNamesLineAndColumn() throws IOException {
        write("tokenizer_config.json", "{\n  \"chat_template\": \"x\",,\n}");
        String message = failure(() -> ChatTemplate.fromPretrained(dir));
        assertTrue(message.contains("tokenizer_config.json is not valid JSON (line 2, column"),
                message);
    }

    @Test
    void syntaxErrorNamesFileAndLine() throws IOException {
        write("chat_template.jinja", "ok\n{% for m in messages %}\n{{ m.role }}\n");
        String message = failure(() -> ChatTemplate.fromPretrained(dir));
        assertTrue(message.startsWith(dir.resolve("chat_template.jinja") + ": line "), message);
        assertTrue(message.contains("endfor"), message);
    }

    @Test
    void raiseExceptionCarriesTheTemplatesMessage() throws IOException {
        write("chat_template.jinja",
                "{% if messages[0].role != 'user' %}"
                        + "{{ raise_exception('Conversation must start with a user message') }}"
                        + "{% endif %}ok");
        ChatTemplate template = ChatTemplate.fromPretrained(dir);
        assertEquals("ok", template.render(List.of(ChatMessage.user("x")), false));
        String message = failure(() -> template.render(List.of(ChatMessage.system("s")), false));
        assertEquals(
                dir.resolve("chat_template.jinja")
                        + ": the chat template refused the conversation: Conversation must start"
                        + " with a user message (fix the messages to fit the model's chat format)",
                message);
    }

    @Test
    void variablesAndClock() throws IOException {
        write("chat_template.jinja",
                "{{ strftime_now('%d %b %Y %H:%M') }}|{{ tools | length if tools else 'none' }}"
                        + "|{{ enable_thinking }}|{{ documents }}");
        ChatTemplate template = ChatTemplate.fromPretrained(dir);
        Clock clock = Clock.fixed(Instant.parse("2025-01-31T23:30:00Z"), ZoneId.of("Asia/Tokyo"));
        ChatInput input =
                ChatInput.builder()
                        .setMessages(List.of(ChatMessage.user("x")))
                        .optVariable("tools", List.of("a", "b"))
                        .optVariable("enable_thinking", false)
                        .optClock(clock)
                        .build();
        // the clock's zone is the local time strftime_now writes
        assertEquals("01 Feb 2025 08:30|2|False|", template.render(input));
    }

    private void write(String name, String text) throws IOException {
        Files.writeString(dir.resolve(name), text, StandardCharsets.UTF_8);
    }

    private static String json(String s) {
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }

    private static String failure(org.junit.jupiter.api.function.Executable call) {
        return assertThrows(ChatTemplateException.class, call).getMessage();
    }
}
