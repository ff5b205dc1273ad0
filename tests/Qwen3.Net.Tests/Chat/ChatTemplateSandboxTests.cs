using System.Text;
using System.Text.Json;
using Qwen3.Net.Chat;

namespace Qwen3.Net.Tests.Chat;

/// <summary>
/// Hostile templates meet a <see cref="ChatTemplateLimits"/> bound and fail with a <see cref="ChatTemplateException"/> naming
/// it. The deep-nesting cases run in the test process on purpose: if a bound fails they crash the test host.
/// </summary>
public class ChatTemplateSandboxTests
{
    private static string Repeat(string s, int count) => new StringBuilder(s.Length * count).Insert(0, s, count).ToString();

    private static ChatTemplateException ParseFails(string template, ChatTemplateLimits? limits = null)
    {
        var act = () => ChatTemplate.Parse(template, limits);
        return act.Should().Throw<ChatTemplateException>().Which;
    }

    private static ChatTemplateException RenderFails(string template, ChatTemplateLimits? limits = null)
    {
        var parsed = ChatTemplate.Parse(template, limits);
        var act = () => parsed.Render([]);
        return act.Should().Throw<ChatTemplateException>().Which;
    }

    [Fact]
    public void Twenty_thousand_nested_ifs_exceed_MaxNestingDepth()
    {
        var template = "\n" + Repeat("{% if true %}", 20_000) + "x" + Repeat("{% endif %}", 20_000);

        var e = ParseFails(template);

        e.Message.Should().Contain(nameof(ChatTemplateLimits.MaxNestingDepth));
        e.Line.Should().Be(2);
    }

    [Fact]
    public void Two_hundred_thousand_nested_parentheses_exceed_MaxNestingDepth()
    {
        var e = ParseFails("{{ " + Repeat("(", 200_000) + "1" + Repeat(")", 200_000) + " }}");

        e.Message.Should().Contain(nameof(ChatTemplateLimits.MaxNestingDepth));
    }

    [Theory]
    [InlineData("{% set ", "(", "a", ")", " = 1 %}")]
    [InlineData("{% for ", "(", "a", ")", " in [] %}{% endfor %}")]
    [InlineData("{% macro m() %}", "{% if true %}", "", "{% endif %}", "{% endmacro %}")]
    [InlineData("{% for x in [] %}", "{% for y in [] %}", "", "{% endfor %}", "{% endfor %}")]
    [InlineData("", "{% set x %}", "", "{% endset %}", "")]
    public void Deeply_nested_statements_and_targets_exceed_MaxNestingDepth(string start, string open, string middle, string close, string end)
    {
        var e = ParseFails(start + Repeat(open, 100_000) + middle + Repeat(close, 100_000) + end);

        e.Message.Should().Contain(nameof(ChatTemplateLimits.MaxNestingDepth));
    }

    [Theory]
    [InlineData("-", "1", "")]
    [InlineData("not ", "1", "")]
    [InlineData("1 if 1 else ", "1", "")]
    [InlineData("", "1", " + 1")]
    [InlineData("", "1", " * 1")]
    [InlineData("", "'a'", " ~ 'a'")]
    [InlineData("", "1", " or 1")]
    [InlineData("", "1", " and 1")]
    [InlineData("", "x", ".a")]
    [InlineData("", "x", "[0]")]
    [InlineData("", "x", "()")]
    [InlineData("", "x", " | string")]
    [InlineData("[", "", "]")]
    [InlineData("{'k': ", "1", "}")]
    [InlineData("f(", "1", ")")]
    public void Long_expression_chains_exceed_MaxNestingDepth(string open, string middle, string close)
    {
        // Chains such as a + a + a build left-deep trees without deep parser recursion; rendering them would recurse.
        var e = ParseFails("{{ " + Repeat(open, 100_000) + middle + Repeat(close, 100_000) + " }}");

        e.Message.Should().Contain(nameof(ChatTemplateLimits.MaxNestingDepth));
    }

    [Fact]
    public void Nesting_up_to_the_limit_parses_and_renders()
    {
        var limits = new ChatTemplateLimits { MaxNestingDepth = 40 };

        ChatTemplate.Parse("{{ " + Repeat("(", 30) + "1" + Repeat(")", 30) + " }}", limits).Render([]).Should().Be("1");
        ParseFails("{{ " + Repeat("(", 50) + "1" + Repeat(")", 50) + " }}", limits).Message.Should().Contain("MaxNestingDepth (40)");
    }

    [Fact]
    public void The_stack_guard_stops_parser_recursion_the_limits_allow()
    {
        var e = ParseFails("{{ " + Repeat("(", 200_000) + "1" + Repeat(")", 200_000) + " }}", new ChatTemplateLimits { MaxNestingDepth = int.MaxValue });

        e.Message.Should().Contain("stack");
    }

    [Fact]
    public void A_hostile_tokenizer_config_fails_to_load_without_killing_the_process()
    {
        var path = Path.Combine(Path.GetTempPath(), $"hostile-{Guid.NewGuid():N}-tokenizer_config.json");
        File.WriteAllText(path, JsonSerializer.Serialize(new { chat_template = Repeat("{% if true %}", 20_000) + Repeat("{% endif %}", 20_000) }));
        try
        {
            var act = () => ChatTemplate.FromTokenizerConfig(path);

            act.Should().Throw<ModelLoadException>().WithInnerException<ChatTemplateException>()
                .Which.Message.Should().Contain(nameof(ChatTemplateLimits.MaxNestingDepth));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Repeating_a_string_a_billion_times_exceeds_MaxStringLength()
    {
        var e = RenderFails("\n{{ 'x' * 1000000000 }}");

        e.Message.Should().Contain(nameof(ChatTemplateLimits.MaxStringLength));
        e.Line.Should().Be(2);
    }

    [Theory]
    [InlineData("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}")]
    [InlineData("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}")]
    [InlineData("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = [ns.s, ns.s] | join %}{% endfor %}")]
    [InlineData("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s.replace('x', 'xx') %}{% endfor %}")]
    [InlineData("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s | replace('x', 'xx') %}{% endfor %}")]
    [InlineData("{{ ('<' * 10000000) | escape }}")]
    [InlineData("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s | tojson %}{% endfor %}")]
    [InlineData("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = [ns.s, ns.s] | string %}{% endfor %}")]
    [InlineData("{{ (['x' * 1000000] * 100) | join }}")]
    [InlineData("{{ ['x' * 10000000] * 2 }}")]
    [InlineData("{{ [[[1, 2]]] | tojson(indent=1000000000) }}")]
    [InlineData("{% macro m(s) %}{% for i in range(100) %}{{ s }}{% endfor %}{% endmacro %}{{ m('x' * 1000000) }}")]
    [InlineData("{% set block %}{% for i in range(100) %}{{ 'x' * 1000000 }}{% endfor %}{% endset %}")]
    public void Building_a_huge_string_exceeds_MaxStringLength(string template)
    {
        RenderFails(template).Message.Should().Contain(nameof(ChatTemplateLimits.MaxStringLength));
    }

    [Theory]
    [InlineData("{% for i in range(1000000000) %}x{% endfor %}")]
    [InlineData("{% for i in range(0, -1000000000, -1) %}x{% endfor %}")]
    [InlineData("{{ [1] * 1000000000 }}")]
    [InlineData("{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}{% endfor %}")]
    [InlineData("{% set ns = namespace(l=(1,)) %}{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}{% endfor %}")]
    [InlineData("{% for c in 'x' * 2000000 %}{% endfor %}")]
    public void Building_a_huge_list_exceeds_MaxListLength(string template)
    {
        RenderFails(template).Message.Should().Contain(nameof(ChatTemplateLimits.MaxListLength));
    }

    [Theory]
    [InlineData("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}")]
    [InlineData("{% for i in range(1000000) %}{% for j in range(1000000) %}x{% endfor %}{% endfor %}")]
    [InlineData("{% set s = 'x' * 10000000 %}{% for i in range(1000000) %}{% set t = s ~ '' %}{% endfor %}")]
    [InlineData("{% set l = [0] * 1000000 %}{% for i in range(1000000) %}{% set t = l[1:] %}{% endfor %}")]
    public void Long_running_loops_exceed_MaxSteps(string template)
    {
        RenderFails(template).Message.Should().Contain(nameof(ChatTemplateLimits.MaxSteps));
    }

    [Theory]
    [InlineData("{{ b in a }}")]
    [InlineData("{{ a.find(b) }}")]
    [InlineData("{{ a.count(b) }}")]
    [InlineData("{{ a.split(b) }}")]
    [InlineData("{{ a.replace(b, '') }}")]
    [InlineData("{{ a | replace(b, '') }}")]
    [InlineData("{{ a.strip(b) }}")]
    [InlineData("{{ a | trim(b) }}")]
    [InlineData("{{ c in [a] * 1000000 }}")]
    [InlineData("{{ [a] * 1000000 == [a ~ ''] * 1000000 }}")]
    [InlineData("{{ [a] * 1000000 < [a ~ ''] * 1000000 }}")]
    [InlineData("{{ ([a] * 1000000).count(a ~ '') }}")]
    public void Quadratic_searches_and_comparisons_exceed_MaxSteps(string expression)
    {
        // A pattern that matches at every position but the middle makes a naive search compare it everywhere.
        const string setup = "{% set a = 'a' * 4000000 %}{% set b = 'a' * 1000000 ~ 'b' ~ 'a' * 1000000 %}{% set c = 'a' * 3999999 ~ 'b' %}";

        RenderFails(setup + expression).Message.Should().Contain(nameof(ChatTemplateLimits.MaxSteps));
    }

    [Theory]
    [InlineData("{{ a.isdigit() }}")]
    [InlineData("{{ a.startswith('x') }}")]
    [InlineData("{{ a | length }}")]
    [InlineData("{{ a | int }}")]
    [InlineData("{{ a is lower }}")]
    [InlineData("{{ {}.get(a) }}")]
    [InlineData("{{ a in {} }}")]
    [InlineData("{{ {a: 1} | length }}")]
    [InlineData("{{ (messages | first)[a] }}")]
    public void Linear_work_on_a_long_string_in_a_loop_exceeds_MaxSteps(string expression)
    {
        var template = ChatTemplate.Parse("{% set a = '9' * 10000000 %}{% for i in range(1000000) %}" + expression + "{% endfor %}");

        var act = () => template.Render([Message.User("hi")]);

        act.Should().Throw<ChatTemplateException>().Which.Message.Should().Contain(nameof(ChatTemplateLimits.MaxSteps));
    }

    [Fact]
    public void A_small_step_budget_stops_an_ordinary_loop()
    {
        var limits = new ChatTemplateLimits { MaxSteps = 1000 };

        ChatTemplate.Parse("{% for i in range(10) %}{{ i }}{% endfor %}", limits).Render([]).Should().Be("0123456789");
        RenderFails("{% for i in range(1000) %}{{ i }}{% endfor %}", limits).Message.Should().Contain("MaxSteps (1000)");
    }

    [Fact]
    public void A_huge_prompt_exceeds_MaxOutputLength()
    {
        RenderFails("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}").Message.Should().Contain(nameof(ChatTemplateLimits.MaxOutputLength));
    }

    [Fact]
    public void Deep_macro_recursion_exceeds_MaxCallDepth()
    {
        var e = RenderFails("{% macro f(n) %}\n{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");

        e.Message.Should().Contain(nameof(ChatTemplateLimits.MaxCallDepth)).And.Contain("'f'");
        e.Line.Should().Be(2);
    }

    [Fact]
    public void Macro_recursion_within_MaxCallDepth_renders()
    {
        const string template = "{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(5) }}";

        ChatTemplate.Parse(template, new ChatTemplateLimits { MaxCallDepth = 6 }).Render([]).Should().Be("54321");
        RenderFails(template, new ChatTemplateLimits { MaxCallDepth = 5 }).Message.Should().Contain("MaxCallDepth (5)");
    }

    [Fact]
    public void The_stack_guard_stops_render_recursion_the_limits_allow()
    {
        var limits = new ChatTemplateLimits { MaxCallDepth = int.MaxValue, MaxSteps = long.MaxValue };

        RenderFails("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", limits).Message.Should().Contain("stack");
    }

    [Theory]
    [InlineData("{% set ns = namespace(x=[]) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x }}")]
    [InlineData("{% set ns = namespace(x=[]) %}{% for i in range(100000) %}{% set ns.x = {'a': ns.x} %}{% endfor %}{{ ns.x | tojson }}")]
    [InlineData("{% set ns = namespace() %}{% set ns.self = ns %}{{ ns }}")]
    public void Deep_or_cyclic_values_exceed_MaxNestingDepth_when_printed(string template)
    {
        RenderFails(template).Message.Should().Contain(nameof(ChatTemplateLimits.MaxNestingDepth));
    }

    [Fact]
    public void Comparing_values_nested_deeper_than_the_stack_fails_cleanly()
    {
        var e = RenderFails("{% set ns = namespace(x=[], y=[]) %}{% for i in range(200000) %}{% set ns.x = [ns.x] %}{% set ns.y = [ns.y] %}{% endfor %}{{ ns.x == ns.y }}");

        e.Message.Should().Contain("stack");
    }

    [Fact]
    public void Deep_json_in_tool_definitions_exceeds_MaxNestingDepth()
    {
        using var document = JsonDocument.Parse(
            "{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": " + Repeat("[", 1000) + Repeat("]", 1000) + "}}",
            new JsonDocumentOptions { MaxDepth = 2000 });
        var tool = ToolDefinition.FromJsonElement(document.RootElement);
        var template = ChatTemplate.Parse("{{ tools | length }}");

        var act = () => template.Render([Message.User("hi")], [tool]);

        act.Should().Throw<ChatTemplateException>().Which.Message.Should().Contain(nameof(ChatTemplateLimits.MaxNestingDepth));
    }

    [Fact]
    public void Deep_json_in_tool_call_arguments_exceeds_MaxNestingDepth()
    {
        using var document = JsonDocument.Parse("{\"a\": " + Repeat("[", 1000) + Repeat("]", 1000) + "}", new JsonDocumentOptions { MaxDepth = 2000 });
        var message = Message.Assistant("", toolCalls: [new ToolCall("f", document.RootElement)]);
        var template = ChatTemplate.Parse("{{ messages | length }}");

        var act = () => template.Render([message]);

        act.Should().Throw<ChatTemplateException>().Which.Message.Should().Contain(nameof(ChatTemplateLimits.MaxNestingDepth));
    }

    [Fact]
    public void Deep_json_from_the_model_is_a_malformed_tool_call()
    {
        // JsonDocument's default MaxDepth of 64 bounds what the output parser accepts.
        var error = ChatOutputParser.TryParseToolCall("{\"name\": \"f\", \"arguments\": {\"a\": " + Repeat("[", 100_000) + Repeat("]", 100_000) + "}}", out var call);

        call.Should().BeNull();
        error.Should().Contain("not valid JSON");
    }

    [Theory]
    [InlineData("{{ 2 ** 1000000000 }}")]
    [InlineData("{{ 10 ** 5000 }}")]
    [InlineData("{% set ns = namespace(n=3) %}{% for i in range(64) %}{% set ns.n = ns.n * ns.n %}{% endfor %}")]
    [InlineData("{% set ns = namespace(n=1) %}{% for i in range(100000) %}{% set ns.n = ns.n + ns.n %}{% endfor %}")]
    public void Huge_integers_fail_like_pythons_digit_limit(string template)
    {
        RenderFails(template).Message.Should().Contain("4300 digits");
    }

    [Fact]
    public void Integer_literals_beyond_the_digit_limit_do_not_parse()
    {
        ParseFails("{{ " + Repeat("9", 5000) + " }}").Message.Should().Contain("4300 digits");
        ChatTemplate.Parse("{{ 2 ** 100 }}").Render([]).Should().Be("1267650600228229401496703205376");
    }

    [Fact]
    public void A_cancelled_render_stops()
    {
        var template = ChatTemplate.Parse("{% for i in range(100) %}{{ i }}{% endfor %}");

        var act = () => template.Render([], cancellationToken: new CancellationToken(canceled: true));

        act.Should().Throw<OperationCanceledException>();
    }

    [Theory]
    [InlineData("''.__class__")]
    [InlineData("''.GetType")]
    [InlineData("(1).GetType")]
    [InlineData("messages.GetType")]
    [InlineData("messages.__class__")]
    [InlineData("range.Method")]
    [InlineData("range.Target")]
    [InlineData("raise_exception.__globals__")]
    [InlineData("namespace().__dict__")]
    [InlineData("dict.__init__")]
    [InlineData("cycler")]
    [InlineData("joiner")]
    [InlineData("lipsum")]
    [InlineData("self")]
    [InlineData("config")]
    [InlineData("os")]
    [InlineData("System")]
    [InlineData("Environment")]
    public void Templates_reach_nothing_but_their_inputs(string expression)
    {
        // An undefined value prints as nothing, and calling it is an error: no type, method or global is reachable.
        ChatTemplate.Parse("{{ " + expression + " }}").Render([]).Should().BeEmpty();
        RenderFails("{{ " + expression + "() }}").Message.Should().Contain("UndefinedError");
    }

    [Theory]
    [InlineData("{% include 'secrets.txt' %}")]
    [InlineData("{% import 'os' as os %}")]
    [InlineData("{% from 'x' import y %}")]
    [InlineData("{% extends '/etc/passwd' %}")]
    public void Templates_cannot_load_other_files(string template)
    {
        ParseFails(template).Message.Should().Contain("Unknown or unsupported tag");
    }

    [Fact]
    public void Limits_must_be_positive()
    {
        var act = () => new ChatTemplateLimits { MaxSteps = 0 };

        act.Should().Throw<ArgumentOutOfRangeException>().WithParameterName(nameof(ChatTemplateLimits.MaxSteps));
    }

    [Fact]
    public void A_template_keeps_the_limits_it_was_parsed_with()
    {
        var limits = new ChatTemplateLimits { MaxOutputLength = 3 };
        var template = ChatTemplate.Parse("abcd", limits);

        template.Limits.Should().BeSameAs(limits);
        ChatTemplate.Parse("abcd").Limits.Should().BeSameAs(ChatTemplateLimits.Default);
        RenderFails("abcd", limits).Message.Should().Contain("MaxOutputLength (3)");
    }
}
