package org.peft4j.cli;

import org.peft4j.models.chat.ChatInput;
import org.peft4j.models.chat.ChatTemplate;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.concurrent.Callable;

/**
 * {@code peft4j template}: renders a conversation with a model's chat template, as transformers'
 * {@code apply_chat_template(messages, tokenize=False)} does, and prints the text alone: its exact
 * UTF-8 bytes, no newline added. It reads only the tokenizer files.
 */
@Command(
        name = "template",
        mixinStandardHelpOptions = true,
        description = {
            "Render a conversation with a model's chat template (as transformers'"
                    + " apply_chat_template) and print the text, exactly, with no newline added.",
            "The template is the directory's chat_template.jinja, else the chat_template of its"
                    + " tokenizer_config.json, which also gives bos_token and eos_token.",
            "The messages file is a JSON array of {\"role\": ..., \"content\": ...} objects, or"
                    + " JSON Lines with one such object a line."
        })
public final class TemplateCommand implements Callable<Integer> {

    @Option(
            names = "--model",
            required = true,
            paramLabel = "DIR",
            description = "The model or tokenizer directory (only its tokenizer files are read).")
    Path model;

    @Option(
            names = "--messages",
            required = true,
            paramLabel = "FILE",
            description = "The conversation: a JSON array of {role, content}, or JSON Lines.")
    Path messages;

    @Option(
            names = "--add-generation-prompt",
            description = "End with the opening of the assistant's turn, for generation.")
    boolean addGenerationPrompt;

    @Option(
            names = "--now",
            paramLabel = "TIME",
            description =
                    "The time strftime_now reads (Llama 3's 'Today Date'), as an ISO instant"
                            + " such as 2024-09-05T08:30:00Z, for reproducible output"
                            + " (default: the system clock, in its time zone).")
    Instant now;

    /** Creates the command; picocli calls this. */
    public TemplateCommand() {}

    /** {@inheritDoc} */
    @Override
    public Integer call() throws Exception {
        ChatTemplate template = ChatTemplate.fromPretrained(model);
        String text =
                template.render(
                        ChatInput.builder()
                                .setMessages(MessagesFile.read(messages))
                                .optAddGenerationPrompt(addGenerationPrompt)
                                .optClock(
                                        now == null
                                                ? Clock.systemDefaultZone()
                                                : Clock.fixed(now, ZoneOffset.UTC))
                                .build());
        PrintStream out = System.out;
        out.write(text.getBytes(StandardCharsets.UTF_8));
        out.flush();
        return 0;
    }
}
