using Envio.AppHost.Hosting;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Envio.Contracts;
using Envio.Messaging;
using Envio.Tests.Support;
using Json.Schema;
using k8s.Models;

namespace Envio.Tests.Deployment;

/// <summary>
/// deploy/kubernetes, checked without a cluster: every layout renders with <c>kubectl kustomize</c>; each built-in
/// object reads strictly into the Kubernetes models (an unknown or mistyped field fails, as the API server's strict
/// field validation would), each operator's resource validates against the schema its CRD publishes (vendored in
/// deploy/kubernetes/schemas, unknown fields refused); and the rendered objects keep the deployment's promises.
/// </summary>
public sealed partial class KubernetesTests
{
    private static readonly string KubernetesDirectory = Path.Combine(Repository.Root, "deploy", "kubernetes");

    public static TheoryData<string> Layouts() => ["base", "overlays/external-sqlserver", "overlays/trial"];

    [Theory]
    [MemberData(nameof(Layouts))]
    public async Task Every_builtin_object_reads_strictly_into_the_Kubernetes_models(string layout)
    {
        var rendered = await Rendered.OfAsync(layout);
        var builtIn = rendered.Objects.Where(o => !CustomResourceSchemas.Knows(o)).ToList();
        Assert.NotEmpty(builtIn);
        foreach (var item in builtIn)
        {
            Assert.True(BuiltInModels.TryGetValue(ApiKind(item), out var model),
                $"{layout}: {Describe(item)} ({ApiKind(item)}) has neither a model here nor a vendored schema in deploy/kubernetes/schemas.");
            try
            {
                Assert.NotNull(JsonSerializer.Deserialize(item.ToJsonString(), model, StrictModels));
            }
            catch (JsonException e)
            {
                Assert.Fail($"{layout}: {Describe(item)} does not fit {model.Name}: {e.Message}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public async Task Every_operator_resource_validates_against_its_published_schema(string layout)
    {
        var rendered = await Rendered.OfAsync(layout);
        var custom = rendered.Objects.Where(CustomResourceSchemas.Knows).ToList();
        Assert.Equal(CustomResourceSchemas.Kinds, custom.Select(ApiKind).ToHashSet());
        foreach (var item in custom)
        {
            var problems = CustomResourceSchemas.Problems(item);
            Assert.True(problems.Count == 0, $"{layout}: {Describe(item)} does not fit its schema:\n{string.Join('\n', problems)}");
            try
            {
                JsonSerializer.Deserialize<V1ObjectMeta>(item["metadata"]!.ToJsonString(), StrictModels);
            }
            catch (JsonException e)
            {
                Assert.Fail($"{layout}: {Describe(item)}'s metadata: {e.Message}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public async Task Every_Deployment_is_ready_on_health_and_alive_on_alive(string layout)
    {
        var deployments = (await Rendered.OfAsync(layout)).OfKind("Deployment");
        Assert.NotEmpty(deployments);
        foreach (var deployment in deployments)
        {
            foreach (var container in Containers(PodSpec(deployment), initContainers: false))
            {
                Assert.True(ProbePath(container, "readinessProbe") == "/health", $"{layout}: {Describe(deployment)} is not ready on GET /health.");
                Assert.True(ProbePath(container, "livenessProbe") == "/alive", $"{layout}: {Describe(deployment)} is not alive on GET /alive.");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public async Task Every_Deployment_has_a_PodDisruptionBudget_over_its_pods(string layout)
    {
        var rendered = await Rendered.OfAsync(layout);
        var budgets = rendered.OfKind("PodDisruptionBudget");
        foreach (var deployment in rendered.OfKind("Deployment"))
        {
            var labels = deployment["spec"]!["template"]!["metadata"]!["labels"]!.AsObject();
            Assert.True(budgets.Any(b => Selects(b["spec"]!["selector"]!["matchLabels"]!.AsObject(), labels)),
                $"{layout}: no PodDisruptionBudget selects the pods of {Describe(deployment)}.");
        }
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public async Task Every_container_has_requests_and_limits_and_runs_as_non_root(string layout)
    {
        foreach (var workload in (await Rendered.OfAsync(layout)).Workloads())
        {
            var pod = PodSpec(workload);
            foreach (var container in Containers(pod, initContainers: true))
            {
                var name = $"{layout}: {Describe(workload)}, container {container["name"]}";
                foreach (var bound in new[] { "requests", "limits" })
                {
                    var resources = container["resources"]?[bound];
                    Assert.True(resources?["cpu"] is not null && resources["memory"] is not null, $"{name} has no {bound} for cpu and memory.");
                }
                Assert.True(container["securityContext"]?["allowPrivilegeEscalation"]?.GetValue<bool>() == false, $"{name} may escalate privileges.");
                Assert.True(pod["securityContext"]?["runAsNonRoot"]?.GetValue<bool>() == true, $"{name} may run as root.");
                if (workload["kind"]!.GetValue<string>() == "Deployment")
                {
                    Assert.True(container["securityContext"]?["readOnlyRootFilesystem"]?.GetValue<bool>() == true, $"{name}'s root file system is writable.");
                }
            }
        }
    }

    /// <summary>
    /// Secrets reach processes as files only: no variable takes a Secret's value, each <c>NAME_FILE</c> variable
    /// names a file under /run/secrets/ that a Secret volume of that container provides, and no literal value or
    /// ConfigMap entry looks like a credential.
    /// </summary>
    [Theory]
    [MemberData(nameof(Layouts))]
    public async Task No_secret_is_in_an_environment_variable(string layout)
    {
        var rendered = await Rendered.OfAsync(layout);
        foreach (var workload in rendered.Workloads())
        {
            var pod = PodSpec(workload);
            foreach (var container in Containers(pod, initContainers: true))
            {
                var name = $"{layout}: {Describe(workload)}, container {container["name"]}";
                Assert.False(container["envFrom"]?.AsArray().Any(e => e?["secretRef"] is not null) == true, $"{name} takes a Secret as its environment.");
                foreach (var variable in container["env"]?.AsArray() ?? [])
                {
                    var variableName = variable!["name"]!.GetValue<string>();
                    Assert.True(variable["valueFrom"]?["secretKeyRef"] is null, $"{name}: {variableName} takes a Secret's value.");
                    var value = variable["value"]?.GetValue<string>() ?? "";
                    Assert.False(LooksLikeCredential(value), $"{name}: {variableName} holds what looks like a credential.");
                    if (variableName.EndsWith("_FILE", StringComparison.Ordinal) && value.StartsWith("/run/secrets/", StringComparison.Ordinal))
                    {
                        Assert.True(SecretFileMounted(pod, container, value), $"{name}: {variableName} names {value}, which no Secret volume of the container provides.");
                    }
                }
            }
        }
        foreach (var map in rendered.OfKind("ConfigMap"))
        {
            foreach (var (key, value) in map["data"]?.AsObject() ?? [])
            {
                Assert.False(LooksLikeCredential(value!.GetValue<string>()), $"{layout}: {Describe(map)}'s {key} looks like a credential.");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public async Task Nothing_speaks_plain_AMQP(string layout)
    {
        var rendered = await Rendered.OfAsync(layout);
        Assert.DoesNotMatch(PlainAmqp(), rendered.Text);
        foreach (var secrets in new[] { await MadeSecrets.OfAsync("trial"), await MadeSecrets.OfAsync("external") })
        {
            foreach (var (secret, keys) in secrets.Where(s => s.Key.EndsWith("-broker", StringComparison.Ordinal)))
            {
                Assert.StartsWith("amqps://", keys["uri"]);
                Assert.Contains(":5671/envio", keys["uri"]);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public async Task The_broker_is_three_nodes_that_listen_on_TLS_only(string layout)
    {
        var cluster = Assert.Single((await Rendered.OfAsync(layout)).OfKind("RabbitmqCluster"));
        Assert.Equal(3, cluster["spec"]!["replicas"]!.GetValue<long>());
        var tls = cluster["spec"]!["tls"];
        Assert.True(tls?["disableNonTLSListeners"]?.GetValue<bool>() == true, $"{layout}: the RabbitmqCluster keeps its plaintext listeners.");
        Assert.False(string.IsNullOrEmpty(tls?["secretName"]?.GetValue<string>()), $"{layout}: the RabbitmqCluster has no certificate.");
    }

    /// <summary>KEDA adds consumers when any registered type's work queue fills, up to the documented maximum.</summary>
    [Theory]
    [MemberData(nameof(Layouts))]
    public async Task The_consumer_scales_on_every_work_queue(string layout)
    {
        var rendered = await Rendered.OfAsync(layout);
        var scaler = Assert.Single(rendered.OfKind("ScaledObject"));
        var target = scaler["spec"]!["scaleTargetRef"]!["name"]!.GetValue<string>();
        Assert.Contains(rendered.OfKind("Deployment"), d => d["metadata"]!["name"]!.GetValue<string>() == target);
        Assert.Equal("consumer", target);
        var queues = scaler["spec"]!["triggers"]!.AsArray()
            .Where(t => t!["type"]!.GetValue<string>() == "rabbitmq" && t["metadata"]?["mode"]?.GetValue<string>() == "QueueLength")
            .Select(t => t!["metadata"]!["queueName"]!.GetValue<string>())
            .ToHashSet();
        foreach (var type in DataObjectTypes.Registered)
        {
            var queue = new TopologyOptions().NamesOf(type).Queue;
            Assert.True(queues.Contains(queue), $"{layout}: the consumer's ScaledObject has no trigger on {queue}.");
        }
        var maximum = scaler["spec"]!["maxReplicaCount"]?.GetValue<long>();
        Assert.True(maximum is > 0, $"{layout}: the consumer's ScaledObject has no maxReplicaCount.");
        Assert.Contains($"maxReplicaCount: {maximum}", File.ReadAllText(Path.Combine(Repository.Root, "docs", "kubernetes.md")));
    }

    /// <summary>
    /// Every ConfigMap a workload or an operator's resource names is rendered with it; every Secret is made by
    /// make-secrets.sh (with the keys read from it), by cert-manager, or by the operator as docs/kubernetes.md says.
    /// </summary>
    [Theory]
    [MemberData(nameof(Layouts))]
    public async Task Every_ConfigMap_and_Secret_named_is_made_by_someone(string layout)
    {
        var rendered = await Rendered.OfAsync(layout);
        var maps = rendered.OfKind("ConfigMap").ToDictionary(m => m["metadata"]!["name"]!.GetValue<string>(), m => m["data"]!.AsObject());
        foreach (var (name, key) in References(rendered, "configMap"))
        {
            Assert.True(maps.TryGetValue(name, out var data), $"{layout}: the ConfigMap {name} is named but not rendered.");
            Assert.True(key is null || data.ContainsKey(key), $"{layout}: the ConfigMap {name} has no key {key}.");
        }

        var made = await MadeSecrets.OfAsync(layout == "overlays/trial" ? "trial" : "external");
        var issued = rendered.OfKind("Certificate").Select(c => c["spec"]!["secretName"]!.GetValue<string>()).ToHashSet();
        var guide = File.ReadAllText(Path.Combine(Repository.Root, "docs", "kubernetes.md"));
        foreach (var (name, key) in References(rendered, "secret"))
        {
            if (made.TryGetValue(name, out var keys))
            {
                Assert.True(key is null || keys.ContainsKey(key), $"{layout}: make-secrets.sh writes no key {key} into the Secret {name}.");
            }
            else if (issued.Contains(name))
            {
                Assert.True(key is null or "tls.crt" or "tls.key" or "ca.crt", $"{layout}: cert-manager's Secret {name} has no key {key}.");
            }
            else
            {
                Assert.True(guide.Contains($"kubectl -n envio create secret generic {name}", StringComparison.Ordinal)
                    || guide.Contains($"kubectl -n envio create secret tls {name}", StringComparison.Ordinal),
                    $"{layout}: the Secret {name} is made neither by make-secrets.sh nor by cert-manager, and docs/kubernetes.md does not say how to make it.");
            }
        }
    }

    /// <summary>The trial's connection string pins the server's certificate: the consumer must have that file.</summary>
    [Fact]
    public async Task The_trial_consumer_has_the_certificate_its_connection_string_pins()
    {
        var connection = (await MadeSecrets.OfAsync("trial"))["enviodb-connection"]["connection"];
        var pinned = Assert.Single(PinnedCertificate().Matches(connection)).Groups[1].Value;
        var consumer = (await Rendered.OfAsync("overlays/trial")).OfKind("Deployment").Single(d => d["metadata"]!["name"]!.GetValue<string>() == "consumer");
        var pod = PodSpec(consumer);
        Assert.True(SecretFileMounted(pod, Containers(pod, initContainers: false).Single(), pinned), $"The trial's consumer has no {pinned}.");
    }

    [GeneratedRegex(@"ServerCertificate=([^;]+)")]
    private static partial Regex PinnedCertificate();

    [Fact]
    public async Task The_external_database_link_fails_over_across_subnets_and_verifies_the_server()
    {
        var connection = (await MadeSecrets.OfAsync("external"))["enviodb-connection"]["connection"];
        Assert.Contains("MultiSubnetFailover=True", connection);
        Assert.Contains("Encrypt=Strict", connection);
        Assert.DoesNotContain("TrustServerCertificate", connection, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>
    /// The broker's users get the least their role needs (docs/kubernetes.md, "The broker's users"), read off the
    /// names every registered type really has: RabbitMQ matches these patterns against exchange and queue names.
    /// </summary>
    [Fact]
    public async Task Each_broker_user_may_touch_its_roles_names_and_no_others()
    {
        var permissions = (await Rendered.OfAsync("base")).OfKind("Permission")
            .ToDictionary(p => p["spec"]!["userReference"]!["name"]!.GetValue<string>(), p => p["spec"]!["permissions"]!.AsObject());
        Assert.Equal(["envio-admin", "envio-api", "envio-consumer", "envio-keda"], permissions.Keys.Order());
        // The same roles as the AppHost's broker and compose's definitions (BrokerPermissions, deployed form).
        foreach (var (user, role) in new[] { ("envio-admin", BrokerRole.Administrator), ("envio-api", BrokerRole.Api), ("envio-consumer", BrokerRole.Consumer) })
        {
            var expected = BrokerPermissions.Of(role, BrokerPermissions.AnyType);
            Assert.Equal(expected, new Permissions(
                permissions[user]["configure"]!.GetValue<string>(), permissions[user]["write"]!.GetValue<string>(), permissions[user]["read"]!.GetValue<string>()));
        }
        foreach (var operation in new[] { "configure", "write", "read" })
        {
            Assert.Equal("^$", permissions["envio-keda"][operation]!.GetValue<string>());
        }
        foreach (var (user, granted) in permissions)
        {
            foreach (var (operation, pattern) in granted)
            {
                foreach (var foreign in new[] { "amq.gen-x1", "amq.direct", "other.orders", "envio", "envio.Orders" })
                {
                    Assert.False(Regex.IsMatch(foreign, pattern!.GetValue<string>()), $"{user} may {operation} '{foreign}'.");
                }
            }
        }
    }

    [Fact]
    public async Task The_error_queue_policy_lifts_the_delivery_limit_of_every_error_queue_only()
    {
        var policy = Assert.Single((await Rendered.OfAsync("base")).OfKind("Policy"))["spec"]!;
        Assert.Equal(1_000_000, policy["definition"]!["delivery-limit"]!.GetValue<long>()); // a policy cannot say -1
        var pattern = policy["pattern"]!.GetValue<string>();
        foreach (var names in DataObjectTypes.Registered.Select(new TopologyOptions().NamesOf))
        {
            Assert.Matches(pattern, names.ErrorQueue);
            Assert.DoesNotMatch(pattern, names.Queue);
            Assert.All(names.RetryQueues, q => Assert.DoesNotMatch(pattern, q));
        }
    }

    /// <summary>kustomize reads files inside its folders only: these are copies of compose's, kept equal.</summary>
    [Theory]
    [InlineData("base/bootstrap.sql", "sqlserver/bootstrap.sql")]
    [InlineData("base/secret-env.sh", "secret-env.sh")]
    [InlineData("overlays/trial/mssql.conf", "sqlserver/mssql.conf")]
    public void The_copies_of_compose_files_are_equal(string copy, string original) =>
        Assert.Equal(
            File.ReadAllText(Path.Combine(Repository.Root, "deploy", "compose", original)),
            File.ReadAllText(Path.Combine(KubernetesDirectory, copy)));

    private static void Allows(Dictionary<string, JsonObject> permissions, string user, string operation, string[] allowed, string[] others)
    {
        var pattern = permissions[user][operation]!.GetValue<string>();
        foreach (var name in allowed)
        {
            Assert.True(Regex.IsMatch(name, pattern), $"{user} may not {operation} '{name}' ({pattern}).");
        }
        foreach (var name in others.Except(allowed))
        {
            Assert.False(Regex.IsMatch(name, pattern), $"{user} may {operation} '{name}' ({pattern}), which its role does not need.");
        }
    }

    private static readonly JsonSerializerOptions StrictModels = new() { UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow };

    private static readonly Dictionary<string, Type> BuiltInModels = new()
    {
        ["v1/ConfigMap"] = typeof(V1ConfigMap),
        ["v1/Namespace"] = typeof(V1Namespace),
        ["v1/Service"] = typeof(V1Service),
        ["apps/v1/Deployment"] = typeof(V1Deployment),
        ["apps/v1/StatefulSet"] = typeof(V1StatefulSet),
        ["batch/v1/Job"] = typeof(V1Job),
        ["policy/v1/PodDisruptionBudget"] = typeof(V1PodDisruptionBudget),
        ["networking.k8s.io/v1/Ingress"] = typeof(V1Ingress),
    };

    private static string ApiKind(JsonObject item) => $"{item["apiVersion"]}/{item["kind"]}";

    private static string Describe(JsonObject item) => $"{item["kind"]} {item["metadata"]?["name"]}";

    private static JsonObject PodSpec(JsonObject workload) => workload["spec"]!["template"]!["spec"]!.AsObject();

    private static IEnumerable<JsonObject> Containers(JsonObject pod, bool initContainers) =>
        (pod["containers"]?.AsArray() ?? []).Concat(initContainers ? pod["initContainers"]?.AsArray() ?? [] : []).Select(c => c!.AsObject());

    private static string? ProbePath(JsonObject container, string probe) => container[probe]?["httpGet"]?["path"]?.GetValue<string>();

    private static bool Selects(JsonObject selector, JsonObject labels) =>
        selector.All(s => labels[s.Key]?.GetValue<string>() == s.Value!.GetValue<string>());

    /// <summary>Whether a Secret (directly or projected) puts a file at <paramref name="path"/> in the container.</summary>
    private static bool SecretFileMounted(JsonObject pod, JsonObject container, string path)
    {
        var volumes = (pod["volumes"]?.AsArray() ?? []).ToDictionary(v => v!["name"]!.GetValue<string>(), v => v!);
        foreach (var mount in container["volumeMounts"]?.AsArray() ?? [])
        {
            var directory = mount!["mountPath"]!.GetValue<string>() + "/";
            if (!path.StartsWith(directory, StringComparison.Ordinal) || !volumes.TryGetValue(mount["name"]!.GetValue<string>(), out var volume))
            {
                continue;
            }
            var file = path[directory.Length..];
            var sources = volume["secret"] is { } secret
                ? [secret]
                : (volume["projected"]?["sources"]?.AsArray() ?? []).Select(s => s!["secret"]).OfType<JsonNode>().ToList();
            if (sources.Any(s => s["items"] is not JsonArray items || items.Any(i => i!["path"]!.GetValue<string>() == file)))
            {
                return true;
            }
        }
        return false;
    }

    private static bool LooksLikeCredential(string value) => CredentialShape().IsMatch(value);

    /// <summary>A password in a connection string or a URI, or a key-sized run of base64.</summary>
    [GeneratedRegex(@"(?i)\b(password|pwd)=[^;\s]+|amqps?://[^/@\s]+:[^/@\s]+@|^[A-Za-z0-9+/]{40,}={0,2}$")]
    private static partial Regex CredentialShape();

    [GeneratedRegex(@"\b5672\b|amqp://")]
    private static partial Regex PlainAmqp();

    /// <summary>Each (name, key) of a kind of reference: <c>configMap</c> or <c>secret</c>, wherever it is named.</summary>
    private static IEnumerable<(string Name, string? Key)> References(Rendered rendered, string kind)
    {
        foreach (var workload in rendered.Workloads())
        {
            var pod = PodSpec(workload);
            foreach (var volume in pod["volumes"]?.AsArray() ?? [])
            {
                var direct = volume![kind];
                if (direct is not null)
                {
                    var name = (direct["secretName"] ?? direct["name"])!.GetValue<string>();
                    foreach (var key in Keys(direct))
                    {
                        yield return (name, key);
                    }
                }
                foreach (var source in volume["projected"]?["sources"]?.AsArray() ?? [])
                {
                    if (source![kind] is { } projected)
                    {
                        foreach (var key in Keys(projected))
                        {
                            yield return (projected["name"]!.GetValue<string>(), key);
                        }
                    }
                }
            }
            foreach (var container in Containers(pod, initContainers: true))
            {
                foreach (var variable in container["env"]?.AsArray() ?? [])
                {
                    if (variable!["valueFrom"]?[kind + "KeyRef"] is { } reference)
                    {
                        yield return (reference["name"]!.GetValue<string>(), reference["key"]!.GetValue<string>());
                    }
                }
            }
        }
        foreach (var authentication in rendered.OfKind("TriggerAuthentication"))
        {
            foreach (var target in authentication["spec"]![kind + "TargetRef"]?.AsArray() ?? [])
            {
                yield return (target!["name"]!.GetValue<string>(), target["key"]!.GetValue<string>());
            }
        }
        if (kind != "secret")
        {
            yield break;
        }
        foreach (var user in rendered.OfKind("User"))
        {
            yield return (user["spec"]!["importCredentialsSecret"]!["name"]!.GetValue<string>(), "username");
            yield return (user["spec"]!["importCredentialsSecret"]!["name"]!.GetValue<string>(), "password");
        }
        foreach (var cluster in rendered.OfKind("RabbitmqCluster"))
        {
            yield return (cluster["spec"]!["tls"]!["secretName"]!.GetValue<string>(), "tls.crt");
            yield return (cluster["spec"]!["tls"]!["caSecretName"]!.GetValue<string>(), "ca.crt");
        }
        foreach (var ingress in rendered.OfKind("Ingress"))
        {
            foreach (var tls in ingress["spec"]!["tls"]?.AsArray() ?? [])
            {
                yield return (tls!["secretName"]!.GetValue<string>(), "tls.crt");
            }
        }
        foreach (var issuer in rendered.OfKind("Issuer").Where(i => i["spec"]!["ca"] is not null))
        {
            yield return (issuer["spec"]!["ca"]!["secretName"]!.GetValue<string>(), "tls.key");
        }
    }

    private static IEnumerable<string?> Keys(JsonNode volumeSource) =>
        volumeSource["items"]?.AsArray().Select(i => (string?)i!["key"]!.GetValue<string>()) ?? [null];
}
