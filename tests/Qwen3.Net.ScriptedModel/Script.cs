namespace Qwen3.Net.ScriptedModel;

/// <summary>
/// The texts the scripted model writes, as the chat output parser returns them (reasoning without its surrounding
/// newlines), so tests of anything built on the model can assert them exactly.
/// </summary>
/// <remarks>
/// Which script runs depends on the prompt: no tools gives the chat script; tools (the template's tools section) give
/// the tool call; a <c>&lt;tool_response&gt;</c> anywhere in the prompt gives the final answer, also in later turns.
/// Thinking enabled adds the reasoning before each.
/// </remarks>
public static class Script
{
    /// <summary>Reasoning of a plain chat turn with thinking enabled (no tools in the prompt).</summary>
    public const string ChatReasoning = "The user says hello, so I greet them in English and Chinese.";

    /// <summary>Answer of a plain chat turn, with thinking enabled or disabled.</summary>
    public const string ChatAnswer = "Hello! 你好，世界！This is a scripted test model 🌍 with one fixed answer.";

    /// <summary>Reasoning before the tool call, when the prompt has tools and thinking is enabled.</summary>
    public const string ToolCallReasoning = "Weather in Paris needed; calling the tool:";

    /// <summary>Name of the function the model calls when the prompt has tools.</summary>
    public const string ToolName = "get_weather";

    /// <summary>Arguments of the call, as the JSON text the model writes.</summary>
    public const string ToolArgumentsJson = "{\"city\":\"Paris\"}";

    /// <summary>
    /// The tool-call JSON object the model writes between <c>&lt;tool_call&gt;</c> tags. It is compact, unlike Qwen's
    /// <c>{"name": ..., "arguments": ...}</c>: the vocabulary has too few tokens holding a space before a quote for
    /// four of them to differ, and in a bigram model a token cannot be followed by two different ones.
    /// </summary>
    public const string ToolCallJson = "{\"name\":\"" + ToolName + "\",\"arguments\":" + ToolArgumentsJson + "}";

    /// <summary>Reasoning after a tool result, with thinking enabled.</summary>
    public const string FinalReasoning = "Sunny weather came back — good news!";

    /// <summary>Answer after a tool result, with thinking enabled or disabled.</summary>
    public const string FinalAnswer = "Today it looks sunny (21°C) ☀️ 巴黎今天是晴天。";
}
