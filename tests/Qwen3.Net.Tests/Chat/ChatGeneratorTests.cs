using Qwen3.Net.Chat;

namespace Qwen3.Net.Tests.Chat;

public sealed class ChatGeneratorTests(TinyModelFixture fixture) : IClassFixture<TinyModelFixture>
{
    private static readonly ChatGenerationOptions Greedy = new() { ThinkingMode = ThinkingMode.Disabled, Sampling = SamplingOptions.Greedy with { MaxNewTokens = 6 } };

    [Fact]
    public async Task A_stateless_turn_matches_a_session_turn_and_returns_the_message_to_append()
    {
        var generator = new ChatGenerator(fixture.Model);
        var updates = await Collect(generator.GenerateAsync([Message.User("Hello!")], Greedy));

        using var session = new ChatSession(fixture.Model, new ChatSessionOptions { ThinkingMode = ThinkingMode.Disabled, Sampling = Greedy.Sampling });
        var sessionUpdates = await Collect(session.SendAsync("Hello!"));

        updates.SelectMany(u => u.TokenIds).Should().Equal(sessionUpdates.SelectMany(u => u.TokenIds));
        updates[^1].Message.Should().Be(session.History[^1]);
        updates[^1].FinishReason.Should().Be(FinishReason.Length);
    }

    [Fact]
    public async Task A_conversation_sent_again_with_one_more_turn_prefills_only_what_is_new()
    {
        var generator = new ChatGenerator(fixture.Model);
        string system = string.Join(' ', Enumerable.Range(0, 300).Select(i => $"rule{i}"));
        List<Message> conversation = [Message.System(system), Message.User("First question?")];
        var first = await Collect(generator.GenerateAsync(conversation, Greedy));
        int promptTokens = generator.EncodePrompt(conversation, Greedy).Length;
        promptTokens.Should().BeGreaterThan(512, "the system prompt fills at least two KV pages");
        first[^1].Usage!.ReusedPromptTokens.Should().Be(0);

        conversation.Add(first[^1].Message!);
        conversation.Add(Message.User("Second question?"));
        var second = await Collect(generator.GenerateAsync(conversation, Greedy));
        second[^1].Usage!.ReusedPromptTokens.Should().Be(promptTokens / 256 * 256, "every full page of the first prompt is taken from the shared pages");
    }

    private static async Task<List<ChatUpdate>> Collect(IAsyncEnumerable<ChatUpdate> updates)
    {
        var list = new List<ChatUpdate>();
        await foreach (var update in updates)
        {
            list.Add(update);
        }

        return list;
    }
}
