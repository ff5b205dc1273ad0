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

    [Fact]
    public async Task A_token_cancelled_before_the_turn_ends_it_with_one_cancelled_update()
    {
        var generator = new ChatGenerator(fixture.Model);

        var updates = await Collect(generator.GenerateAsync([Message.User("Hello!")], Greedy, new CancellationToken(canceled: true)));

        AssertCancelledBeforeGenerating(updates);
    }

    [Fact]
    public async Task A_token_cancelled_while_the_prompt_renders_ends_the_turn_with_one_cancelled_update()
    {
        var generator = new ChatGenerator(fixture.Model);
        using var cancellation = new CancellationTokenSource();
        var messages = new CancellingMessages(2000, cancelAtIndex: 1000, cancellation);

        var updates = await Collect(generator.GenerateAsync(messages, Greedy, cancellation.Token));

        messages.CancelledDuringRead.Should().BeTrue("the template read message 1000 after the turn started");
        AssertCancelledBeforeGenerating(updates);
    }

    private static void AssertCancelledBeforeGenerating(List<ChatUpdate> updates)
    {
        var finished = updates.Should().ContainSingle().Which;
        finished.Kind.Should().Be(ChatUpdateKind.Finished);
        finished.FinishReason.Should().Be(FinishReason.Cancelled);
        finished.Message.Should().BeNull();
        finished.Usage!.GeneratedTokens.Should().Be(0);
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

/// <summary>User messages that cancel <paramref name="cancellation"/> when the message at <paramref name="cancelAtIndex"/> is read.</summary>
internal sealed class CancellingMessages(int count, int cancelAtIndex, CancellationTokenSource cancellation) : IReadOnlyList<Message>
{
    public bool CancelledDuringRead { get; private set; }

    public int Count => count;

    public Message this[int index]
    {
        get
        {
            ArgumentOutOfRangeException.ThrowIfNegative(index);
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, count);
            if (index == cancelAtIndex && !cancellation.IsCancellationRequested)
            {
                cancellation.Cancel();
                CancelledDuringRead = true;
            }

            return Message.User($"message {index}");
        }
    }

    public IEnumerator<Message> GetEnumerator()
    {
        for (int i = 0; i < count; i++)
        {
            yield return this[i];
        }
    }

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}
