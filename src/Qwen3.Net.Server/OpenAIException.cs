using System.Text.Json;

namespace Qwen3.Net.Server;

/// <summary>A request the server refuses, answered with OpenAI's error body <c>{"error": {"message", "type", "param", "code"}}</c>.</summary>
internal sealed class OpenAIException : Exception
{
    public OpenAIException(int status, string message, string type, string? param = null, string? code = null)
        : base(message)
    {
        Status = status;
        Type = type;
        Param = param;
        Code = code;
    }

    public int Status { get; }

    public string Type { get; }

    public string? Param { get; }

    public string? Code { get; }

    public static OpenAIException Invalid(string message, string? param, string? code = null) =>
        new(StatusCodes.Status400BadRequest, message, "invalid_request_error", param, code);

    public static OpenAIException NotFound(string message, string code, string? param = null) =>
        new(StatusCodes.Status404NotFound, message, "invalid_request_error", param, code);

    public static OpenAIException Busy(string message) =>
        new(StatusCodes.Status429TooManyRequests, message, "rate_limit_exceeded", null, "rate_limit_exceeded");

    /// <summary>Writes the error object (without the status line) to <paramref name="writer"/>.</summary>
    public void WriteTo(Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        writer.WriteStartObject("error");
        writer.WriteString("message", Message);
        writer.WriteString("type", Type);
        writer.WriteString("param", Param);
        writer.WriteString("code", Code);
        writer.WriteEndObject();
        writer.WriteEndObject();
    }
}
