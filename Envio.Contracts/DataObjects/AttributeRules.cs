using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Reflection;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Envio.Contracts.Orders;

namespace Envio.Contracts.DataObjects;

/// <summary>
/// A data object's rules, built once at start-up from the DataAnnotations attributes on its properties (and what its
/// columns can hold: text within its maximum and free of control characters, decimals that fit <c>decimal(19,4)</c>),
/// checked with typed getters. Every failure is keyed by its JSON path (<c>payer.name</c>, <c>lines[2].amount</c>),
/// in the order of the properties; keys and messages are made only for what fails.
/// </summary>
public static class AttributeRules
{
    /// <summary>Fits <c>decimal(19,4)</c>, the columns decimals are stored in.</summary>
    public const decimal MaxDecimal = 999_999_999_999_999m;
    public const int DecimalPlaces = 4;

    public delegate void Check<in T>(T value, string path, Dictionary<string, List<string>> errors);

    /// <summary>The rules of an object whose members are <paramref name="members"/>.</summary>
    public static Check<T> For<T>(IReadOnlyList<DataObjectMember> members)
    {
        var rules = members.Select(member => member.Kind switch
        {
            MemberKind.Nested => Accessors.Invoke<Check<T>>(typeof(AttributeRules), nameof(ForObject), [typeof(T), member.ValueType], null, member),
            MemberKind.Collection => Accessors.Invoke<Check<T>>(typeof(AttributeRules), nameof(ForCollection),
                [typeof(T), member.Property.PropertyType, member.ValueType], null, member),
            _ => ForValue<T>(member),
        }).ToArray();
        return (value, path, errors) =>
        {
            foreach (var rule in rules)
            {
                rule(value, path, errors);
            }
        };
    }

    internal static void Fail(Dictionary<string, List<string>> errors, string path, string member, string message)
    {
        var key = path.Length == 0 ? member : member.Length == 0 ? path : $"{path}.{member}";
        if (!errors.TryGetValue(key, out var list))
        {
            errors[key] = list = [];
        }
        list.Add(message);
    }

    private static Check<T> ForObject<T, TObject>(DataObjectMember member) where TObject : class
    {
        var get = Accessors.Getter<T, TObject?>(member.Property);
        var inner = For<TObject>(member.Members);
        var (name, required) = (member.JsonName, member.IsRequired);
        return (owner, path, errors) =>
        {
            if (get(owner) is { } value)
            {
                inner(value, path.Length == 0 ? name : $"{path}.{name}", errors);
            }
            else if (required)
            {
                Fail(errors, path, name, "The value is required.");
            }
        };
    }

    private static Check<T> ForCollection<T, TCollection, TElement>(DataObjectMember member)
        where TCollection : class, IEnumerable<TElement> where TElement : class
    {
        var get = Accessors.Getter<T, TCollection?>(member.Property);
        var inner = For<TElement>(member.Members);
        var (name, required, min, max) = (member.JsonName, member.IsRequired, member.MinLength ?? 0, member.MaxLength ?? int.MaxValue);
        return (owner, path, errors) =>
        {
            if (get(owner) is not { } collection)
            {
                if (required)
                {
                    Fail(errors, path, name, "The value is required.");
                }
                return;
            }
            var count = collection.TryGetNonEnumeratedCount(out var known) ? known : collection.Count();
            if (count < min)
            {
                Fail(errors, path, name, $"At least {min} element(s) are required.");
            }
            else if (count > max)
            {
                Fail(errors, path, name, $"At most {max} elements are allowed.");
                return;
            }
            var prefix = path.Length == 0 ? name : $"{path}.{name}";
            var index = 0;
            foreach (var element in collection)
            {
                if (element is null)
                {
                    Fail(errors, $"{prefix}[{index}]", "", "The value is required.");
                }
                else
                {
                    inner(element, $"{prefix}[{index}]", errors);
                }
                index++;
            }
        };
    }

    private static Check<T> ForValue<T>(DataObjectMember member)
    {
        var type = member.ValueType;
        var nullableStruct = type.IsValueType && Nullable.GetUnderlyingType(member.Property.PropertyType) is not null;
        var factory = type.IsValueType
            ? nullableStruct ? nameof(ForNullableStruct) : nameof(ForStruct)
            : nameof(ForClass);
        return Accessors.Invoke<Check<T>>(typeof(AttributeRules), factory, [typeof(T), type], null, member);
    }

    private static Check<T> ForClass<T, TValue>(DataObjectMember member) where TValue : class
    {
        var get = Accessors.Getter<T, TValue?>(member.Property);
        var problem = ProblemOf<TValue>(member);
        var (name, required) = (member.JsonName, member.IsRequired);
        return (owner, path, errors) =>
        {
            var value = get(owner);
            if (value is null || (value is string text && string.IsNullOrWhiteSpace(text) && required))
            {
                if (required)
                {
                    Fail(errors, path, name, "The value is required.");
                }
            }
            else if (problem(value) is { } message)
            {
                Fail(errors, path, name, message);
            }
        };
    }

    private static Check<T> ForStruct<T, TValue>(DataObjectMember member) where TValue : struct
    {
        var get = Accessors.Getter<T, TValue>(member.Property);
        var problem = ProblemOf<TValue>(member);
        var (name, required) = (member.JsonName, member.IsRequired);
        return (owner, path, errors) =>
        {
            var value = get(owner);
            if (required && EqualityComparer<TValue>.Default.Equals(value, default))
            {
                Fail(errors, path, name, "The value is required.");
            }
            else if (problem(value) is { } message)
            {
                Fail(errors, path, name, message);
            }
        };
    }

    private static Check<T> ForNullableStruct<T, TValue>(DataObjectMember member) where TValue : struct
    {
        var get = Accessors.Getter<T, TValue?>(member.Property);
        var problem = ProblemOf<TValue>(member);
        var (name, required) = (member.JsonName, member.IsRequired);
        return (owner, path, errors) =>
        {
            if (get(owner) is not { } value)
            {
                if (required)
                {
                    Fail(errors, path, name, "The value is required.");
                }
            }
            else if (problem(value) is { } message)
            {
                Fail(errors, path, name, message);
            }
        };
    }

    /// <summary>What is wrong with a present value, or null: the checks its type and attributes call for.</summary>
    private static Func<TValue, string?> ProblemOf<TValue>(DataObjectMember member)
    {
        var checks = new List<Func<TValue, string?>>();
        if (typeof(TValue) == typeof(string))
        {
            checks.AddRange(TextChecksOf(member).Select(check => (Func<TValue, string?>)(value => check((string)(object)value!))));
        }
        else if (typeof(TValue) == typeof(decimal))
        {
            checks.Add(value => (decimal)(object)value! switch
            {
                var d when d is < -MaxDecimal or > MaxDecimal => $"The value must be between {-MaxDecimal} and {MaxDecimal}.",
                var d when d.Scale > DecimalPlaces && decimal.Round(d, DecimalPlaces) != d => $"The value has at most {DecimalPlaces} decimal places.",
                _ => null,
            });
        }
        else if (typeof(TValue).IsEnum)
        {
            var names = EnumNames(typeof(TValue));
            var defined = Enum.GetValues(typeof(TValue)).Cast<TValue>().ToHashSet();
            var message = $"The value must be one of: {string.Join(", ", names.Values)}.";
            checks.Add(value => defined.Contains(value) ? null : message);
        }
        foreach (var range in member.Attributes.OfType<RangeAttribute>())
        {
            var comparer = Comparer<TValue>.Default;
            var (minimum, maximum) = (Bound<TValue>(range.Minimum, range), Bound<TValue>(range.Maximum, range));
            var message = $"The value must be between {range.Minimum} and {range.Maximum}.";
            checks.Add(value => comparer.Compare(value, minimum) < 0 || comparer.Compare(value, maximum) > 0 ? message : null);
        }
        return value =>
        {
            foreach (var check in checks)
            {
                if (check(value) is { } problem)
                {
                    return problem;
                }
            }
            return null;
        };
    }

    private static IEnumerable<Func<string, string?>> TextChecksOf(DataObjectMember member)
    {
        if (member.MaxLength is { } max)
        {
            yield return text => text.Length > max ? $"The value must be at most {max} characters long." : null;
        }
        if (member.MinLength is { } min && min > 0)
        {
            var message = min == member.MaxLength ? $"The value must be exactly {min} characters long." : $"The value must be at least {min} characters long.";
            yield return text => text.Length < min ? message : null;
        }
        yield return text => TextChecks.HasControlCharacters(text) ? "The value must not contain control characters." : null;
        if (member.IsCurrencyCode)
        {
            yield return text => Iso4217.IsCurrency(text) ? null : "The value must be an ISO 4217 currency code in upper case, such as EUR or USD.";
        }
        if (member.Attributes.OfType<EmailAddressAttribute>().Any())
        {
            yield return text => TextChecks.IsEmail(text) ? null : "The email address is not valid.";
        }
        foreach (var pattern in member.Attributes.OfType<RegularExpressionAttribute>())
        {
            var regex = new Regex($"^(?:{pattern.Pattern})$", RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(100));
            var message = $"The value must match the pattern {pattern.Pattern}.";
            yield return text => regex.IsMatch(text) ? null : message;
        }
    }

    private static TValue Bound<TValue>(object bound, RangeAttribute range) =>
        (TValue)Convert.ChangeType(bound is string text ? decimal.Parse(text, CultureInfo.InvariantCulture) : bound, typeof(TValue), CultureInfo.InvariantCulture)
        ?? throw new InvalidOperationException($"The range {range.Minimum}–{range.Maximum} does not fit {typeof(TValue).Name}.");

    /// <summary>An enum's names as JSON writes them (<c>[JsonStringEnumMemberName]</c>, else the member's name), by value.</summary>
    public static IReadOnlyDictionary<object, string> EnumNames(Type enumType) =>
        enumType.GetFields(BindingFlags.Public | BindingFlags.Static).ToDictionary(
            field => field.GetValue(null)!,
            field => field.GetCustomAttribute<JsonStringEnumMemberNameAttribute>()?.Name ?? field.Name);
}
