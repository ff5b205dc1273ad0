// This file checks at compile time that Qwen3.Net's chat types do not clash with Microsoft.Extensions.AI's: it imports
// every namespace a program combining them would, and holds the README's examples unqualified. Were a name ambiguous,
// the test project would not build. The examples also run, on the scripted model.
using Microsoft.Extensions.AI;
using Qwen3.Net;
using Qwen3.Net.Chat;
using Qwen3.Net.Extensions.AI;
using Qwen3.Net.Generation;
using Qwen3.Net.Tests.Chat;

namespace Qwen3.Net.Tests.ExtensionsAI;

public sealed class NamingClashTests(ScriptedModelFixture fixture) : IClassFixture<ScriptedModelFixture>
{
    /// <summary>The README's ChatSession example, verbatim except that the folder is a parameter.</summary>
    internal static async Task ChatSessionExample(string folder, CancellationToken cancellationToken)
    {
        using var model = Qwen3Model.Load(folder);
        using var session = new ChatSession(model, new ChatSessionOptions { ThinkingMode = ThinkingMode.Enabled });

        await foreach (var update in session.SendAsync("Why is the sky blue?", cancellationToken))
        {
            if (update.Kind == ChatUpdateKind.Reasoning) Console.Write($"\u001b[2m{update.Text}\u001b[0m"); // dimmed thinking
            else if (update.Kind == ChatUpdateKind.Answer) Console.Write(update.Text);
            else if (update.Kind == ChatUpdateKind.Finished) Console.WriteLine($"\n[{update.Usage!.DecodeTokensPerSecond:F1} tok/s]");
        }
    }

    /// <summary>The README's IChatClient example, verbatim except that the folder is a parameter.</summary>
    internal static async Task ChatClientExample(string folder)
    {
        using var model = Qwen3Model.Load(folder);
        IChatClient client = new ChatClientBuilder(new Qwen3ChatClient(model)).UseFunctionInvocation().Build();

        var weather = AIFunctionFactory.Create((string city) => $"Sunny, 21 °C in {city}", "get_weather", "Current weather of a city");
        List<ChatMessage> history = [new(ChatRole.User, "What's the weather in Paris?")];
        ChatResponse response = await client.GetResponseAsync(history, new ChatOptions { Tools = [weather] });
        Console.WriteLine(response.Text);

        history.AddMessages(response);                // send the whole conversation again: only the new turns are prefilled
        history.Add(new(ChatRole.User, "And in Rome?"));
        await foreach (var update in client.GetStreamingResponseAsync(history, new ChatOptions { Tools = [weather] }))
        {
            Console.Write(update.Text);
        }
    }

    [Fact]
    public async Task The_readme_examples_run_to_the_end_on_the_scripted_model()
    {
        await ChatSessionExample(fixture.Model.Folder, CancellationToken.None);
        await ChatClientExample(fixture.Model.Folder);
    }

    [Fact]
    public void Both_libraries_chat_types_are_used_unqualified_in_one_file()
    {
        // The types each library names "chat response", "message" and "finish reason" coexist under one set of imports.
        typeof(ChatResponse).Namespace.Should().Be("Microsoft.Extensions.AI");
        typeof(ChatTurn).Namespace.Should().Be("Qwen3.Net.Chat");
        typeof(ChatMessage).Namespace.Should().Be("Microsoft.Extensions.AI");
        typeof(Message).Namespace.Should().Be("Qwen3.Net.Chat");
        typeof(ChatRole).Namespace.Should().Be("Microsoft.Extensions.AI");
        typeof(MessageRole).Namespace.Should().Be("Qwen3.Net.Chat");
        typeof(ChatFinishReason).Namespace.Should().Be("Microsoft.Extensions.AI");
        typeof(FinishReason).Namespace.Should().Be("Qwen3.Net.Generation");
    }
}
