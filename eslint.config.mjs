// ESLint flat config. Formatting is checked by `@effect/dprint` (the dprint TypeScript formatter wrapped as
// an ESLint rule, configured as the Effect repository configures it); `npm run lint:fix` applies it.
// Not type-aware on purpose: it stays fast, and `npm run check` (tsc) does the type checking.
import * as effectEslint from "@effect/eslint-plugin"
import js from "@eslint/js"
import { defineConfig } from "eslint/config"
import tseslint from "typescript-eslint"

const sources = ["{src,test,examples,bench,scripts}/**/*.{ts,mts,cts,js,mjs,cjs}", "*.config.{ts,mts,js,mjs,cjs}"]

// The Node globals our plain JavaScript files may use (TypeScript files are checked by tsc instead).
const nodeGlobals = Object.fromEntries(
  [
    "AbortController",
    "AbortSignal",
    "Buffer",
    "TextDecoder",
    "TextEncoder",
    "URL",
    "URLSearchParams",
    "clearImmediate",
    "clearInterval",
    "clearTimeout",
    "console",
    "fetch",
    "globalThis",
    "performance",
    "process",
    "queueMicrotask",
    "setImmediate",
    "setInterval",
    "setTimeout",
    "structuredClone"
  ].map((name) => [name, "readonly"])
)

export default defineConfig(
  {
    ignores: [
      "**/dist/**",
      "**/build/**",
      "**/node_modules/**",
      "**/coverage/**",
      "**/.tmp/**",
      "**/*.md",
      "docs/**"
    ]
  },
  {
    files: sources,
    extends: [
      js.configs.recommended,
      ...tseslint.configs.recommended,
      ...effectEslint.configs.dprint
    ],
    languageOptions: {
      parser: tseslint.parser,
      ecmaVersion: "latest",
      sourceType: "module",
      globals: nodeGlobals
    },
    linterOptions: {
      reportUnusedDisableDirectives: "warn"
    },
    rules: {
      // Effect idioms: `Effect.gen` bodies without a yield, namespaces merged with a class or interface.
      "require-yield": "off",
      "no-fallthrough": "off",
      "no-irregular-whitespace": "off",
      "prefer-rest-params": "off",
      "prefer-spread": "off",
      "object-shorthand": "error",
      "no-restricted-syntax": [
        "error",
        {
          selector: "CallExpression[callee.property.name='push'] > SpreadElement.arguments",
          message: "Do not use spread arguments in Array.push"
        }
      ],
      // Real redeclarations are compile errors (ts(2451)). The lint rules would also flag the Schema idiom
      // `export const X = Schema.…` + `export type X = typeof X.Type`, which `ignoreDeclarationMerge` does not cover.
      "no-redeclare": "off",
      "@typescript-eslint/no-redeclare": "off",
      "@typescript-eslint/no-namespace": "off",
      "@typescript-eslint/no-explicit-any": "warn",
      "@typescript-eslint/no-empty-object-type": "off",
      "@typescript-eslint/no-unsafe-function-type": "off",
      "@typescript-eslint/no-wrapper-object-types": "off",
      "@typescript-eslint/no-non-null-assertion": "off",
      "@typescript-eslint/ban-ts-comment": "off",
      "@typescript-eslint/no-array-constructor": "off",
      "@typescript-eslint/no-use-before-define": "off",
      "@typescript-eslint/consistent-type-imports": "warn",
      "@typescript-eslint/array-type": ["warn", { default: "generic", readonly: "generic" }],
      "no-unused-vars": "off",
      "@typescript-eslint/no-unused-vars": [
        "error",
        {
          argsIgnorePattern: "^_",
          varsIgnorePattern: "^_",
          caughtErrorsIgnorePattern: "^_",
          destructuredArrayIgnorePattern: "^_",
          ignoreRestSiblings: true
        }
      ],
      "@effect/dprint": [
        "error",
        {
          config: {
            indentWidth: 2,
            lineWidth: 120,
            semiColons: "asi",
            quoteStyle: "alwaysDouble",
            trailingCommas: "never",
            operatorPosition: "maintain",
            "arrowFunction.useParentheses": "force"
          }
        }
      ]
    }
  },
  {
    // Library code: no stray logging.
    files: ["src/**/*.ts"],
    rules: {
      "no-console": "error"
    }
  },
  {
    // Tests, examples, benchmarks and scripts may use `any` and log freely.
    files: ["{test,examples,bench,scripts}/**/*"],
    rules: {
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-require-imports": "off"
    }
  }
)
