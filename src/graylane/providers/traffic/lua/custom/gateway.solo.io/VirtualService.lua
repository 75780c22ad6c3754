-- graylane: Gloo Edge's two-phase canary in a gateway.solo.io/v1 VirtualService.
--
-- Contract (Kruise's): obj.data = {spec, labels, annotations} of the ORIGINAL object, obj.canaryWeight
-- (-1: the step sets no weight), obj.stableWeight, obj.matches, obj.canaryService, obj.stableService in;
-- the new {spec, labels, annotations} out. graylane adds obj.podTemplateLabels (the labels of the
-- workload's current pod template, i.e. of the new version's pods) and, when the release ends,
-- obj.finalising = true.
--
-- A route is the Rollout's when it sends to the stable version, in one of two ways:
--   - a Kubernetes Service destination (routeAction.single.kube, or a multi destination with kube) for
--     the stable Service; the new version is the canary Service;
--   - an Upstream subset (routeAction.single.upstream + subset.values, as Gloo's canary guide does it)
--     whose keys are labels of the pod template; the new version is the same subset with the values
--     the new pods carry (e.g. version: v1 -> version: v2).
-- Phase one, a step with matches: before each such route goes a copy that sends to the new version and
-- matches the route's matchers AND a step match (headers and query parameters added, a step path
-- replacing the path). Phase two, a step with a weight: the route sends weighted destinations, the
-- stable version's (scaled to stableWeight) and the new one's with canaryWeight; with matches too, the
-- header routes stay. A subset route under a step with matches and no weight is already written as
-- phase two's first state (new version at weight 0): the same routing, the guide's own object.
-- Finalising: Service routes are the original again (the stable Service then selects the new pods);
-- subset routes are the original with the subset re-pointed at the pod template's labels, so a
-- completed release ends with one route to the new version (a rollback: to the old one).
local data = obj.data
local spec = data.spec
local labels = obj.podTemplateLabels or {}
local canaryWeight, stableWeight = obj.canaryWeight, obj.stableWeight
if canaryWeight == -1 then
  canaryWeight, stableWeight = 100, 0
end
local hasMatches = obj.matches ~= nil and #obj.matches > 0
local hasWeight = obj.canaryWeight ~= -1

local function copy(value)
  if type(value) ~= "table" then return value end
  local out = {}
  for key, item in pairs(value) do out[key] = copy(item) end
  return out
end

-- Service destinations ------------------------------------------------------------------------------

local function isStableService(destination)
  return destination ~= nil and destination.kube ~= nil and destination.kube.ref ~= nil
    and destination.kube.ref.name == obj.stableService
end

local function canaryService(destination)
  if obj.canaryService == obj.stableService then
    error("Gloo routing by Service needs a canary Service, but disableGenerateCanaryService is set", 0)
  end
  local canary = copy(destination)
  canary.kube.ref.name = obj.canaryService
  return canary
end

-- Upstream subset destinations ----------------------------------------------------------------------

local function isStableSubset(destination)
  if destination == nil or destination.upstream == nil or destination.subset == nil then return false end
  local values = destination.subset.values
  if values == nil or next(values) == nil then return false end
  for key, _ in pairs(values) do
    if labels[key] == nil then return false end
  end
  return true
end

local function repointed(destination)
  local out = copy(destination)
  for key, _ in pairs(out.subset.values) do out.subset.values[key] = labels[key] end
  return out
end

local function newSubset(destination)
  local out = repointed(destination)
  for key, value in pairs(destination.subset.values) do
    if out.subset.values[key] ~= value then return out end
  end
  local shown = {}
  for key, value in pairs(destination.subset.values) do table.insert(shown, key .. "=" .. value) end
  table.sort(shown)
  error("the new pods carry the stable subset's labels (" .. table.concat(shown, ", ") ..
    "): give the new version its own value in the pod template", 0)
end

-- The stable destination of a route, how to reach the new version, and whether it splits already.
local function stableDestination(route)
  local action = route.routeAction
  if action == nil then return nil, nil, false end
  if action.single ~= nil and isStableService(action.single) then return action.single, canaryService, false end
  if action.single ~= nil and isStableSubset(action.single) then return action.single, newSubset, false end
  for _, weighted in ipairs((action.multi or {}).destinations or {}) do
    if isStableService(weighted.destination) then return weighted.destination, canaryService, true end
  end
  return nil, nil, false
end

-- Matches ---------------------------------------------------------------------------------------------

local pathKind = { PathPrefix = "prefix", Exact = "exact", RegularExpression = "regex" }

local function conditions(rules)
  local out = {}
  for _, rule in ipairs(rules or {}) do
    local condition = { name = rule.name, value = rule.value }
    if rule.type == "RegularExpression" then condition.regex = true end
    table.insert(out, condition)
  end
  return out
end

local function withMatch(base, match)
  local matcher = copy(base)
  for _, header in ipairs(conditions(match.headers)) do
    matcher.headers = matcher.headers or {}
    table.insert(matcher.headers, header)
  end
  for _, param in ipairs(conditions(match.queryParams)) do
    matcher.queryParameters = matcher.queryParameters or {}
    table.insert(matcher.queryParameters, param)
  end
  if match.path ~= nil then
    matcher.prefix, matcher.exact, matcher.regex = nil, nil, nil
    matcher[pathKind[match.path.type or "PathPrefix"] or "prefix"] = match.path.value or "/"
  end
  return matcher
end

local function matchRoute(route, newVersion)
  local canary = copy(route)
  local bases = route.matchers
  if bases == nil or #bases == 0 then bases = { { prefix = "/" } } end
  canary.matchers = {}
  for _, base in ipairs(bases) do
    for _, match in ipairs(obj.matches) do
      table.insert(canary.matchers, withMatch(base, match))
    end
  end
  canary.routeAction = { single = newVersion }
  if route.name ~= nil then canary.name = route.name .. "-canary" end
  return canary
end

-- Weights ---------------------------------------------------------------------------------------------

local function weighted(route, destination, newVersion, split, stable, canary)
  local destinations
  if split then
    destinations = route.routeAction.multi.destinations
    for _, item in ipairs(destinations) do
      item.weight = math.floor((item.weight or 0) * stable / 100)
    end
  else
    destinations = { { destination = destination, weight = stable } }
  end
  table.insert(destinations, { destination = newVersion, weight = canary })
  route.routeAction = { multi = { destinations = destinations } }
end

local function release(routes)
  local out = {}
  for _, route in ipairs(routes) do
    local destination, toNew, split = stableDestination(route)
    if destination ~= nil then
      local newVersion = toNew(destination)
      if hasMatches then table.insert(out, matchRoute(route, newVersion)) end
      if hasWeight then
        weighted(route, destination, newVersion, split, stableWeight, canaryWeight)
      elseif toNew == newSubset then
        weighted(route, destination, newVersion, split, 100, 0)
      end
    end
    table.insert(out, route)
  end
  return out
end

local function finalised(routes)
  for _, route in ipairs(routes) do
    local action = route.routeAction
    if action ~= nil and action.single ~= nil and isStableSubset(action.single) then
      action.single = repointed(action.single)
    end
  end
  return routes
end

local host = spec.virtualHost or {}
if host.routes ~= nil then
  if obj.finalising then
    host.routes = finalised(host.routes)
  elseif hasMatches or hasWeight then
    host.routes = release(host.routes)
  end
end
return data
