/*
 * openapi_fixture.h - a hand-written fragment of a real apiserver's /openapi/v2 (Swagger
 * 2.0), shaped as Kubernetes 1.2x serves it: Deployment -> DeploymentSpec ->
 * PodTemplateSpec -> PodSpec -> Container -> ResourceRequirements (an additionalProperties
 * map of Quantity), ContainerPort, IntOrString (format int-or-string), ObjectMeta, Service
 * with its x-kubernetes-group-version-kind, plus a "paths" section and descriptions that
 * tr_openapi_parse drops. Shared by tests/unit/test_openapi.c and tests/fuzz/fuzz_openapi.c.
 */
#ifndef TR_OPENAPI_FIXTURE_H
#define TR_OPENAPI_FIXTURE_H

#define REF(name) "{\"$ref\":\"#/definitions/" name "\"}"
#define GVK(g, v, k) \
    "\"x-kubernetes-group-version-kind\":[{\"group\":\"" g "\",\"kind\":\"" k \
    "\",\"version\":\"" v "\"}]"

static const char openapi_fixture[] =
    "{\"swagger\":\"2.0\",\"info\":{\"title\":\"Kubernetes\",\"version\":\"v1.29.2\"},"
    "\"paths\":{\"/apis/apps/v1/namespaces/{namespace}/deployments\":{\"get\":{"
    "\"description\":\"list or watch objects of kind Deployment\",\"operationId\":"
    "\"listAppsV1NamespacedDeployment\"}}},"
    "\"definitions\":{"
    "\"io.k8s.api.apps.v1.Deployment\":{\"description\":\"Deployment enables declarative "
    "updates for Pods and ReplicaSets.\",\"type\":\"object\",\"properties\":{"
    "\"apiVersion\":{\"type\":\"string\"},\"kind\":{\"type\":\"string\"},"
    "\"metadata\":" REF("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta") ","
    "\"spec\":" REF("io.k8s.api.apps.v1.DeploymentSpec") ","
    "\"status\":{\"type\":\"object\"}},"
    GVK("apps", "v1", "Deployment") "},"
    "\"io.k8s.api.apps.v1.DeploymentSpec\":{\"type\":\"object\",\"required\":[\"selector\","
    "\"template\"],\"properties\":{"
    "\"minReadySeconds\":{\"type\":\"integer\",\"format\":\"int32\"},"
    "\"paused\":{\"type\":\"boolean\"},"
    "\"replicas\":{\"type\":\"integer\",\"format\":\"int32\"},"
    "\"selector\":" REF("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector") ","
    "\"strategy\":" REF("io.k8s.api.apps.v1.DeploymentStrategy") ","
    "\"template\":" REF("io.k8s.api.core.v1.PodTemplateSpec") "}},"
    "\"io.k8s.api.apps.v1.DeploymentStrategy\":{\"type\":\"object\",\"properties\":{"
    "\"rollingUpdate\":{\"type\":\"object\",\"properties\":{"
    "\"maxSurge\":" REF("io.k8s.apimachinery.pkg.util.intstr.IntOrString") ","
    "\"maxUnavailable\":" REF("io.k8s.apimachinery.pkg.util.intstr.IntOrString") "}},"
    "\"type\":{\"type\":\"string\"}}},"
    "\"io.k8s.api.core.v1.PodTemplateSpec\":{\"type\":\"object\",\"properties\":{"
    "\"metadata\":" REF("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta") ","
    "\"spec\":" REF("io.k8s.api.core.v1.PodSpec") "}},"
    "\"io.k8s.api.core.v1.PodSpec\":{\"type\":\"object\",\"required\":[\"containers\"],"
    "\"properties\":{"
    "\"containers\":{\"type\":\"array\",\"items\":" REF("io.k8s.api.core.v1.Container") ","
    "\"x-kubernetes-patch-merge-key\":\"name\",\"x-kubernetes-patch-strategy\":\"merge\"},"
    "\"nodeSelector\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"}},"
    "\"restartPolicy\":{\"type\":\"string\"},"
    "\"terminationGracePeriodSeconds\":{\"type\":\"integer\",\"format\":\"int64\"}}},"
    "\"io.k8s.api.core.v1.Container\":{\"type\":\"object\",\"required\":[\"name\"],"
    "\"properties\":{"
    "\"args\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
    "\"command\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
    "\"env\":{\"type\":\"array\",\"items\":" REF("io.k8s.api.core.v1.EnvVar") "},"
    "\"image\":{\"type\":\"string\"},\"name\":{\"type\":\"string\"},"
    "\"ports\":{\"type\":\"array\",\"items\":" REF("io.k8s.api.core.v1.ContainerPort") "},"
    "\"resources\":" REF("io.k8s.api.core.v1.ResourceRequirements") "}},"
    "\"io.k8s.api.core.v1.EnvVar\":{\"type\":\"object\",\"required\":[\"name\"],"
    "\"properties\":{\"name\":{\"type\":\"string\"},\"value\":{\"type\":\"string\"}}},"
    "\"io.k8s.api.core.v1.ContainerPort\":{\"type\":\"object\",\"required\":"
    "[\"containerPort\"],\"properties\":{\"containerPort\":{\"type\":\"integer\","
    "\"format\":\"int32\"},\"name\":{\"type\":\"string\"},\"protocol\":{\"type\":"
    "\"string\"}}},"
    "\"io.k8s.api.core.v1.ResourceRequirements\":{\"type\":\"object\",\"properties\":{"
    "\"limits\":{\"type\":\"object\",\"additionalProperties\":"
    REF("io.k8s.apimachinery.pkg.api.resource.Quantity") "},"
    "\"requests\":{\"type\":\"object\",\"additionalProperties\":"
    REF("io.k8s.apimachinery.pkg.api.resource.Quantity") "}}},"
    "\"io.k8s.apimachinery.pkg.api.resource.Quantity\":{\"description\":\"Quantity is a "
    "fixed-point representation of a number.\",\"type\":\"string\"},"
    "\"io.k8s.apimachinery.pkg.util.intstr.IntOrString\":{\"type\":\"string\","
    "\"format\":\"int-or-string\"},"
    "\"io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector\":{\"type\":\"object\","
    "\"properties\":{\"matchLabels\":{\"type\":\"object\",\"additionalProperties\":"
    "{\"type\":\"string\"}}},\"x-kubernetes-map-type\":\"atomic\"},"
    "\"io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta\":{\"type\":\"object\","
    "\"properties\":{\"annotations\":{\"type\":\"object\",\"additionalProperties\":"
    "{\"type\":\"string\"}},\"labels\":{\"type\":\"object\",\"additionalProperties\":"
    "{\"type\":\"string\"}},\"name\":{\"type\":\"string\"},\"namespace\":{\"type\":"
    "\"string\"}}},"
    "\"io.k8s.api.core.v1.Service\":{\"type\":\"object\",\"properties\":{"
    "\"apiVersion\":{\"type\":\"string\"},\"kind\":{\"type\":\"string\"},"
    "\"metadata\":" REF("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta") ","
    "\"spec\":{\"type\":\"object\",\"properties\":{\"ports\":{\"type\":\"array\","
    "\"items\":{\"type\":\"object\",\"required\":[\"port\"],\"properties\":{"
    "\"port\":{\"type\":\"integer\"},\"targetPort\":"
    REF("io.k8s.apimachinery.pkg.util.intstr.IntOrString") "}}},"
    "\"selector\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"}}}}},"
    GVK("", "v1", "Service") "},"
    "\"io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps\":{"
    "\"type\":\"object\",\"properties\":{\"x-kubernetes-preserve-unknown-fields\":{"
    "\"type\":\"boolean\"}}},"
    "\"io.k8s.example.v1.Loop\":" REF("io.k8s.example.v1.Loop2") ","
    "\"io.k8s.example.v1.Loop2\":{\"allOf\":[" REF("io.k8s.example.v1.Loop") "],"
    GVK("example.io", "v1", "Loop") "}"
    "}}";

#undef REF
#undef GVK

#endif
