using System.ClientModel;
using System.Text.Json;
using Microsoft.Extensions.AI;
using OpenAI;
using OpenAI.Chat;
using Qwen3.Net.Chat;

namespace Qwen3.Net.Tests.Server;

/// <summary>The server driven by the official OpenAI .NET client and Microsoft.Extensions.AI's adapter of it.</summary>
public sealed class OpenAIClientTests : IClassFixture<ServerFixture>
{
    private readonly ServerFixture _server;

    public OpenAIClientTests(ServerFixture server)
    {
        _server = server;
    }

    private ChatClient Client => new("tiny-qwen3", new ApiKeyCredential("EMPTY"), new OpenAIClientOptions { Endpoint = new Uri(_server.BaseUri, "v1") });

    [Fact]
    public async Task NonStreamingCompletionReportsTheTextFinishAndUsage()
    {
        var messages = new List<OpenAI.Chat.ChatMessage> { new UserChatMessage("你是谁？") };
        ChatCompletion completion = await Client.CompleteChatAsync(messages, new ChatCompletionOptions { MaxOutputTokenCount = 12, Temperature = 0.5f });

        completion.Id.Should().StartWith("chatcmpl-");
        completion.Model.Should().Be("tiny-qwen3");
        completion.FinishReason.Should().Be(OpenAI.Chat.ChatFinishReason.Length, "the random model does not end its turn within 12 tokens");
        completion.Content.Should().ContainSingle().Which.Text.Should().NotBeEmpty();
        int expectedPrompt = new ChatGenerator(_server.Model).EncodePrompt([Message.User("你是谁？")]).Length;
        completion.Usage.InputTokenCount.Should().Be(expectedPrompt);
        completion.Usage.OutputTokenCount.Should().Be(12);
        completion.Usage.TotalTokenCount.Should().Be(expectedPrompt + 12);
        completion.Usage.OutputTokenDetails.ReasoningTokenCount.Should().Be(0);
    }

    [Fact]
    public async Task StreamingDeliversTextDeltasAndUsageInTheLastChunk()
    {
        var updates = new List<StreamingChatCompletionUpdate>();
        await foreach (var update in Client.CompleteChatStreamingAsync([new UserChatMessage("讲个笑话")], new ChatCompletionOptions { MaxOutputTokenCount = 10 }))
        {
            updates.Add(update);
        }

        updates.SelectMany(u => u.ContentUpdate).Select(p => p.Text).Should().Contain(t => t.Length > 0);
        updates.Where(u => u.FinishReason is not null).Should().ContainSingle().Which.FinishReason.Should().Be(OpenAI.Chat.ChatFinishReason.Length);
        // The client asks for stream_options.include_usage; the usage comes once, in the last chunk.
        updates.Where(u => u.Usage is not null).Should().ContainSingle();
        updates[^1].Usage.Should().NotBeNull();
        updates[^1].Usage.OutputTokenCount.Should().Be(10);
        updates[^1].Usage.InputTokenCount.Should().BeGreaterThan(0);
    }

    [Fact]
    public async Task ToolRoundTripRendersTheCallAndTheResultIntoThePrompt()
    {
        var weather = ChatTool.CreateFunctionTool("get_weather", "Current weather in a city",
            BinaryData.FromString("""{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}"""));
        var messages = new List<OpenAI.Chat.ChatMessage>
        {
            new UserChatMessage("What is the weather in Paris?"),
            new AssistantChatMessage([ChatToolCall.CreateFunctionToolCall("call_1", "get_weather", BinaryData.FromString("""{"city": "Paris"}"""))]),
            new ToolChatMessage("call_1", """{"temperature": 21}"""),
        };
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 8, Tools = { weather } };

        ChatCompletion completion = await Client.CompleteChatAsync(messages, options);

        // The server rendered exactly this conversation: the call's arguments verbatim and the tool result.
        using var tool = JsonDocument.Parse("""{"type":"function","function":{"name":"get_weather","description":"Current weather in a city","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}""");
        var expected = new ChatGenerator(_server.Model).EncodePrompt(
            [
                Message.User("What is the weather in Paris?"),
                Message.Assistant(string.Empty, toolCalls: [ToolCall.FromRawArguments("get_weather", """{"city": "Paris"}""")]),
                Message.Tool("""{"temperature": 21}"""),
            ],
            new ChatGenerationOptions { Tools = [ToolDefinition.FromJsonElement(tool.RootElement)] });
        completion.Usage.InputTokenCount.Should().Be(expected.Length);
        completion.FinishReason.Should().BeOneOf(OpenAI.Chat.ChatFinishReason.Length, OpenAI.Chat.ChatFinishReason.Stop, OpenAI.Chat.ChatFinishReason.ToolCalls);
    }

    [Fact]
    public async Task ResendingAConversationReportsItsPrefixAsCached()
    {
        var messages = new List<OpenAI.Chat.ChatMessage>
        {
            new SystemChatMessage(string.Concat(Enumerable.Repeat("You are a careful assistant who answers briefly. ", 60))),
            new UserChatMessage("Hello"),
        };
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 2 };
        ChatCompletion first = await Client.CompleteChatAsync(messages, options);
        ChatCompletion second = await Client.CompleteChatAsync(messages, options);

        // Shared prefix pages hold 256 positions; every full page of the first prompt is reused.
        first.Usage.InputTokenCount.Should().BeGreaterThan(256);
        second.Usage.InputTokenDetails.CachedTokenCount.Should().Be(first.Usage.InputTokenCount / 256 * 256);
    }

    [Fact]
    public async Task AbandonedStreamCancelsItsGenerationAndFreesTheSlot()
    {
        long cancelledBefore = _server.Service.CancelledRequests;
        int received = 0;
        await foreach (var update in Client.CompleteChatStreamingAsync([new UserChatMessage("Count to a million.")], new ChatCompletionOptions { MaxOutputTokenCount = 30000 }))
        {
            if (update.ContentUpdate.Count > 0 && ++received == 3)
            {
                break; // disposes the response: the connection closes mid-stream
            }
        }

        received.Should().Be(3);
        // Uncancelled, this generation would run to 30000 tokens and finish as "length", never counting as cancelled.
        await WaitForAsync(() => _server.Service.CancelledRequests > cancelledBefore, "the server must notice the disconnect and cancel");
        await WaitForAsync(() => _server.Service.RunningRequests == 0, "the cancelled generation must free its slot");
        using var health = JsonDocument.Parse(await _server.Http.GetStringAsync(new Uri(_server.BaseUri, "health")));
        health.RootElement.GetProperty("running_requests").GetInt32().Should().Be(0);
    }

    [Fact]
    public async Task ConcurrentRequestsAreBatchedTogether()
    {
        var scheduler = _server.Model.Scheduler;
        long batchedBefore = scheduler.BatchedSteps;
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 24 };
        scheduler.Hold(true);
        Task<ClientResult<ChatCompletion>>[] requests;
        try
        {
            requests = [.. Enumerable.Range(0, 4).Select(i => Client.CompleteChatAsync([new UserChatMessage($"Question {i}")], options))];
            await WaitForAsync(() => _server.Service.RunningRequests == 4, "all four requests must be generating");
        }
        finally
        {
            scheduler.Hold(false);
        }

        var completions = await Task.WhenAll(requests);
        completions.Should().AllSatisfy(c => c.Value.Usage.OutputTokenCount.Should().Be(24));
        scheduler.BatchedSteps.Should().BeGreaterThan(batchedBefore, "the four generations must have shared forward passes");
    }

    [Fact]
    public async Task MicrosoftExtensionsAIClientGetsResponsesAndStreams()
    {
        IChatClient chat = Client.AsIChatClient();
        var response = await chat.GetResponseAsync("Hello", new ChatOptions { MaxOutputTokens = 6 });
        response.Text.Should().NotBeEmpty();
        response.FinishReason.Should().Be(Microsoft.Extensions.AI.ChatFinishReason.Length);
        response.Usage!.OutputTokenCount.Should().Be(6);

        var streamed = new List<ChatResponseUpdate>();
        await foreach (var update in chat.GetStreamingResponseAsync("Hello", new ChatOptions { MaxOutputTokens = 6 }))
        {
            streamed.Add(update);
        }

        streamed.ToChatResponse().Text.Should().NotBeEmpty();
        streamed.SelectMany(u => u.Contents).OfType<UsageContent>().Should().ContainSingle().Which.Details.OutputTokenCount.Should().Be(6);
    }

    internal static async Task WaitForAsync(Func<bool> condition, string because)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (!condition())
        {
            timeout.IsCancellationRequested.Should().BeFalse(because);
            await Task.Delay(10, CancellationToken.None);
        }
    }
}
