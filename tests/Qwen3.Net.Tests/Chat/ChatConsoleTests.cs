using System.Text.RegularExpressions;
using Qwen3.Chat;

namespace Qwen3.Net.Tests.Chat;

public class ChatConsoleTests
{
    private static readonly ChatConsoleOptions Options = new()
    {
        ModelFolder = Fixtures.TinyModelFolder,
        Threads = 1,
        MaxTokens = 6,
        Temperature = 0f,
        NoThink = true,
    };

    private static async Task<(int Code, string Output)> Run(string input, ChatConsoleOptions? options = null)
    {
        var output = new StringWriter();
        var console = new ChatConsole(new StringReader(input), output, options ?? Options);
        int code = await console.RunAsync();
        return (code, output.ToString());
    }

    /// <summary>The text each answer printed, with speeds (which vary run to run) removed.</summary>
    private static string[] Answers(string output) =>
        Regex.Matches(output, @"no_think> (?!\()(.*?)\[(\d+) tokens · [\d.]+ tok/s · prompt (\d+) \((\d+) reused", RegexOptions.Singleline)
            .Select(m => $"{m.Groups[1].Value}|{m.Groups[2].Value}|{m.Groups[3].Value}|{m.Groups[4].Value}")
            .ToArray();

    [Fact]
    public async Task It_answers_honours_reset_and_stops_at_exit()
    {
        var (code, output) = await Run("hello\n/reset\nhi\n/exit\nnever read\n");
        code.Should().Be(0);
        output.Should().Contain("(conversation cleared)");
        output.Should().NotContain("never read");

        var answers = Answers(output);
        answers.Should().HaveCount(2, output);
        answers.Should().OnlyContain(a => a.Contains("|6|"), "each answer generates max-tokens tokens with the tiny model");

        // After /reset the second question is answered exactly as in a brand-new conversation.
        var (_, alone) = await Run("hi\n");
        var fresh = Answers(alone).Single().Split('|');
        var afterReset = answers[1].Split('|');
        afterReset[..3].Should().Equal(fresh[..3]);
        int.Parse(afterReset[3]).Should().BeGreaterThan(0, "the reset conversation reuses the cached prompt start");
    }

    [Fact]
    public async Task A_prompt_option_completes_the_text_greedily_and_exits()
    {
        const string prompt = "The capital of France is";
        var (code, output) = await Run("never read\n", Options with { Prompt = prompt, MaxTokens = 8 });

        code.Should().Be(0);
        using var model = Qwen3Model.Load(Fixtures.TinyModelFolder);
        int[] ids = [.. model.Tokenizer.Encode(prompt)];
        using var context = model.CreateContext(ids.Length + 8);
        var logits = context.Evaluate(ids);
        var greedy = new List<int>();
        for (int i = 0; i < 8; i++)
        {
            greedy.Add(System.Numerics.Tensors.TensorPrimitives.IndexOfMax(logits));
            logits = context.Evaluate([greedy[^1]]);
        }

        output.Should().Contain(prompt + model.Tokenizer.Decode(greedy.Where(id => id < model.Tokenizer.VocabularySize)));
        output.Should().Contain("8 generated").And.Contain("greedy").And.NotContain("never read");
    }

    [Fact]
    public async Task Think_commands_switch_the_mode_and_the_bundled_model_is_announced()
    {
        var (code, output) = await Run("/think\n/no_think\n", Options with { ModelFolder = null });
        code.Should().Be(0);
        output.Should().Contain("bundled tiny test model").And.Contain("random");
        output.Should().Contain("(thinking enabled)").And.Contain("(thinking disabled)");
        output.Should().MatchRegex(@"Loading .*tiny-qwen3 .*done in");
    }

    [Fact]
    public async Task The_bundled_model_replies_in_a_bounded_number_of_tokens_unless_told_otherwise()
    {
        var (code, output) = await Run("hi\n", Options with { ModelFolder = null, MaxTokens = null });
        code.Should().Be(0);
        output.Should().Contain($"{ChatConsole.BundledModelMaxTokens} tokens each");
        Answers(output).Single().Should().Contain($"|{ChatConsole.BundledModelMaxTokens}|", "the random model never ends its turn by itself");

        var (_, told) = await Run("hi\n", Options with { ModelFolder = null, MaxTokens = 9 });
        told.Should().Contain("9 tokens each");
        Answers(told).Single().Should().Contain("|9|");
    }

    [Fact]
    public async Task A_missing_model_folder_is_reported()
    {
        var (code, output) = await Run("hi\n", Options with { ModelFolder = Path.Combine(Path.GetTempPath(), "no-such-model-" + Guid.NewGuid()) });
        code.Should().Be(1);
        output.Should().Contain("failed:");
    }

    [Fact]
    public void Command_line_options_are_parsed_and_validated()
    {
        var parsed = ChatConsoleOptions.Parse(["/models/Qwen3-0.6B", "--threads", "4", "--max-tokens", "100", "--temperature", "0.5", "--seed", "9", "--no-think", "--refresh-page-cache"]);
        parsed.Should().Be(new ChatConsoleOptions { ModelFolder = "/models/Qwen3-0.6B", Threads = 4, MaxTokens = 100, Temperature = 0.5f, Seed = 9, NoThink = true, RefreshPageCache = true });

        FluentActions.Invoking(() => ChatConsoleOptions.Parse(["--max-tokens", "0"])).Should().Throw<ArgumentException>();
        FluentActions.Invoking(() => ChatConsoleOptions.Parse(["--temperature", "-1"])).Should().Throw<ArgumentException>();
        FluentActions.Invoking(() => ChatConsoleOptions.Parse(["--threads"])).Should().Throw<ArgumentException>();
        FluentActions.Invoking(() => ChatConsoleOptions.Parse(["--bogus"])).Should().Throw<ArgumentException>();
        FluentActions.Invoking(() => ChatConsoleOptions.Parse(["a", "b"])).Should().Throw<ArgumentException>();
    }
}
